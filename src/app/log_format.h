#pragma once

#include "grelay/log.h"

namespace grelay {

// One of the binary's own log lines: |format| and its arguments as for printf, formatted only
// when |level| is on, and logged through the public log_line(), the level and sink an
// embedding host has too. Lines are cut at about 4 KiB.
void log_format(LogLevel level, const char* format, ...) noexcept
    __attribute__((format(printf, 2, 3)));

}  // namespace grelay
