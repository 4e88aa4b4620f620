#include "app/log_format.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <string_view>

namespace grelay {

void log_format(LogLevel level, const char* format, ...) noexcept {
  if (!log_enabled(level)) return;
  char text[4096];
  va_list args;
  va_start(args, format);
  const int n = std::vsnprintf(text, sizeof(text), format, args);
  va_end(args);
  if (n < 0) return;
  log_line(level, std::string_view(text, std::min(static_cast<size_t>(n), sizeof(text) - 1)));
}

}  // namespace grelay
