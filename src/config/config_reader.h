#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "config/host_port.h"
#include "grelay/config.h"

namespace grelay {

// The line a value starts on, for messages.
int line_of(const toml::node& node);

// Quotes a value from the file for a message; control bytes (a TOML escape can hold any)
// are shown as \xNN so the message stays one readable line.
std::string quoted(std::string_view s);

// " (did you mean 'x'?)" for the candidate closest to |word|, or "" when none is close.
std::string suggestion(std::string_view word, const std::vector<std::string_view>& candidates);

// Reads typed values out of one parsed config file. Every problem throws ConfigError
// ("file:line: message"); |name| in each reader is how the message names the value.
class ConfigReader {
 public:
  // |path| must outlive the reader.
  explicit ConfigReader(const std::string& path) : path_(path) {}

  [[noreturn]] void fail(int line, const std::string& message) const {
    throw ConfigError(path_, line, message);
  }

  // Fails at the first key of |table| (in file order) that |allowed| does not hold:
  // "unknown key 'k' |where| (did you mean ...?)".
  void check_keys(const toml::table& table, const std::vector<std::string_view>& allowed,
                  std::string_view where) const;
  std::string string_of(const toml::node& node, std::string_view name) const;
  int64_t integer_of(const toml::node& node, std::string_view name, int64_t min, int64_t max) const;
  std::chrono::milliseconds duration_of(const toml::node& node, std::string_view name) const;
  HostPort address_of(const toml::node& node, std::string_view name, HostRule rule) const;
  // A file name from the config, relative to the config file's directory unless absolute.
  std::string file_of(const toml::node& node, std::string_view name) const;
  std::vector<std::string> strings_of(const toml::node& node, std::string_view name) const;

 private:
  const std::string& path_;
};

}  // namespace grelay
