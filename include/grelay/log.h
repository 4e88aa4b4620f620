#pragma once

#include <functional>
#include <string_view>

#include "grelay/config.h"
#include "grelay/export.h"

namespace grelay {

// grelay's log: one level and one sink for the whole process, shared by every Relay in it.
// Every function here may be called from any thread at any time.
//
// The level: each Relay (and RelayGroup) applies its config's log_level when it is made and
// at each reload, the last one applied winning, until the host sets a level of its own with
// set_log_level(). From then on the host's level holds and configs no longer change it, until
// use_config_log_level(). The default, before either, is LogLevel::info.

// Receives each line at or above the level: its level and its text, without timestamp or
// level word. Control characters in the text are replaced by '?', so text from the network
// cannot forge lines; a site that held back repeats ends its next line with
// " (N suppressed)". It runs on the thread that logs (any Relay's loop), maybe on several
// at once: it must be thread safe, should return quickly, and must not log through grelay.
// An exception it throws is dropped.
using LogSink = std::function<void(LogLevel level, std::string_view message)>;

// Sets the level, and keeps it over configs' log_level (see above).
GRELAY_API void set_log_level(LogLevel level) noexcept;
// Lets Relays apply their config's log_level again, from their next construction or reload.
GRELAY_API void use_config_log_level() noexcept;
// The level in force.
GRELAY_API LogLevel log_level() noexcept;
// True when lines at |level| are written.
GRELAY_API bool log_enabled(LogLevel level) noexcept;

// Sends every line to |sink| from now on; an empty |sink| brings back the default, one line
// per message on stderr in one write(2):
//   ts=2026-11-21T07:50:00.123Z level=info msg="listening on 127.0.0.1:50050"
GRELAY_API void set_log_sink(LogSink sink);

// Logs |message| at |level| through the sink, if the level lets it through (the grelay
// binary's own lines go this way too).
GRELAY_API void log_line(LogLevel level, std::string_view message) noexcept;

}  // namespace grelay
