#include "config/config_reader.h"

#include <algorithm>
#include <cstdio>

#include "config/config_rules.h"
#include "config/duration.h"

namespace grelay {
namespace {

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

int line_of(const toml::node& node) {
  return static_cast<int>(node.source().begin.line);
}

std::string quoted(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      char hex[5];
      std::snprintf(hex, sizeof(hex), "\\x%02x", byte);
      out += hex;
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string suggestion(std::string_view word, const std::vector<std::string_view>& candidates) {
  std::string_view best;
  size_t best_distance = std::min<size_t>(2, word.size() / 2);
  for (std::string_view candidate : candidates) {
    size_t d = edit_distance(word, candidate);
    if (d <= best_distance && (best.empty() || d < edit_distance(word, best))) best = candidate;
  }
  if (best.empty()) return "";
  return " (did you mean " + quoted(best) + "?)";
}

void ConfigReader::check_keys(const toml::table& table,
                              const std::vector<std::string_view>& allowed,
                              std::string_view where) const {
  const toml::key* first = nullptr;
  for (auto&& [key, value] : table) {
    if (std::find(allowed.begin(), allowed.end(), key.str()) != allowed.end()) continue;
    if (first == nullptr || key.source().begin.line < first->source().begin.line) first = &key;
  }
  if (first == nullptr) return;
  fail(static_cast<int>(first->source().begin.line), "unknown key " + quoted(first->str()) + " " +
                                                         std::string(where) +
                                                         suggestion(first->str(), allowed));
}

std::string ConfigReader::string_of(const toml::node& node, std::string_view name) const {
  const auto* value = node.as_string();
  if (value == nullptr) fail(line_of(node), std::string(name) + " must be a string");
  return value->get();
}

int64_t ConfigReader::integer_of(const toml::node& node, std::string_view name, int64_t min,
                                 int64_t max) const {
  const auto* value = node.as_integer();
  if (value == nullptr) fail(line_of(node), std::string(name) + " must be an integer");
  int64_t v = value->get();
  if (std::string why = range_error(name, v, min, max); !why.empty()) fail(line_of(node), why);
  return v;
}

std::chrono::milliseconds ConfigReader::duration_of(const toml::node& node,
                                                    std::string_view name) const {
  const auto* value = node.as_string();
  if (value == nullptr) {
    fail(line_of(node), std::string(name) + " must be a duration string such as \"30s\"");
  }
  std::string error;
  auto d = parse_duration(value->get(), &error);
  if (!d) {
    fail(line_of(node), "bad " + std::string(name) + " " + quoted(value->get()) + ": " + error);
  }
  return *d;
}

HostPort ConfigReader::address_of(const toml::node& node, std::string_view name,
                                  HostRule rule) const {
  std::string text = string_of(node, name);
  std::string error;
  auto address = parse_host_port(text, rule, &error);
  if (!address) fail(line_of(node), "bad " + std::string(name) + " " + quoted(text) + ": " + error);
  return std::move(*address);
}

std::string ConfigReader::file_of(const toml::node& node, std::string_view name) const {
  std::string file = string_of(node, name);
  if (file.empty()) fail(line_of(node), std::string(name) + " must not be empty");
  size_t slash = path_.rfind('/');
  if (file[0] == '/' || slash == std::string::npos) return file;
  return path_.substr(0, slash + 1) + file;
}

std::vector<std::string> ConfigReader::strings_of(const toml::node& node,
                                                  std::string_view name) const {
  const toml::array* array = node.as_array();
  if (array == nullptr) fail(line_of(node), std::string(name) + " must be an array of strings");
  std::vector<std::string> out;
  for (const toml::node& element : *array) {
    out.push_back(string_of(element, name));
  }
  return out;
}

}  // namespace grelay
