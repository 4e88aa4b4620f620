#pragma once

#include <array>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "stats/labelled_family.h"

namespace grelay::prometheus {

// Small writers of the Prometheus text format (version 0.0.4), shared by every metric family
// the admin endpoint renders.

// A label value escaped as the format wants: backslash, quote and newline.
inline std::string escape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// `name="value",...` for the given pairs (to join with more pairs).
inline std::string label_pairs(
    std::initializer_list<std::pair<const char*, std::string_view>> pairs) {
  std::string out;
  for (const auto& [name, value] : pairs) {
    if (!out.empty()) out += ',';
    out += name;
    out += "=\"";
    out += escape(value);
    out += '"';
  }
  return out;
}

// `name="value",...` for label names |names| (a declaration's) and their |values|.
template <size_t N>
std::string label_pairs(const std::array<const char*, N>& names,
                        const std::array<std::string_view, N>& values) {
  std::string out;
  for (size_t i = 0; i < N; ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    out += escape(values[i]);
    out += '"';
  }
  return out;
}

// `{name="value",...}`, or "" without labels.
inline std::string labels(std::initializer_list<std::pair<const char*, std::string_view>> pairs) {
  std::string out = label_pairs(pairs);
  return out.empty() ? out : "{" + out + "}";
}

// `{name="value",...}` for label names |names| (a declaration's) and their |values|.
template <size_t N>
std::string labels(const std::array<const char*, N>& names,
                   const std::array<std::string_view, N>& values) {
  std::string out = label_pairs(names, values);
  return out.empty() ? out : "{" + out + "}";
}

// The # HELP and # TYPE lines of a family.
inline void family(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ");
  out.append(name).append(" ").append(type).append("\n");
}

template <size_t N>
void family(std::string& out, const LabelledFamily<N>& f) {
  family(out, f.name, f.prometheus_type, f.help);
}

inline void sample(std::string& out, std::string_view name, const std::string& label_text,
                   std::string_view value) {
  out.append(name).append(label_text).append(" ").append(value).append("\n");
}

}  // namespace grelay::prometheus
