#include "config/cors_keys.h"

#include <string>

#include "config/config_rules.h"

namespace grelay {

namespace {

std::vector<std::string> header_names(const ConfigReader& r, const toml::node& node,
                                      const std::string& name) {
  std::vector<std::string> list = r.strings_of(node, name);
  for (std::string& header : list) {
    for (char& c : header)
      c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    if (std::string why = cors_header_error(header); !why.empty()) {
      r.fail(line_of(node), name + ": " + why);
    }
  }
  return list;
}

}  // namespace

CorsConfig parse_cors(const ConfigReader& r, const toml::node& node, std::string_view where) {
  const std::string prefix = std::string(where) + " cors";
  const toml::table* table = node.as_table();
  if (table == nullptr) {
    r.fail(line_of(node), prefix + " must be a table: cors = { allow_origins = [\"...\"] }");
  }
  r.check_keys(*table,
               {"allow_origins", "allow_headers", "expose_headers", "max_age", "allow_credentials"},
               "in " + prefix);
  CorsConfig cors;
  cors.line = line_of(node);
  const toml::node* origins = table->get("allow_origins");
  if (origins == nullptr) r.fail(cors.line, prefix + " is missing 'allow_origins'");
  cors.allow_origins = r.strings_of(*origins, prefix + " allow_origins");
  if (cors.allow_origins.empty()) {
    r.fail(line_of(*origins), prefix + " allow_origins must not be empty");
  }
  for (const std::string& origin : cors.allow_origins) {
    if (std::string why = cors_origin_error(origin); !why.empty()) r.fail(line_of(*origins), why);
  }
  if (const toml::node* n = table->get("allow_headers")) {
    cors.allow_headers = header_names(r, *n, prefix + " allow_headers");
  }
  if (const toml::node* n = table->get("expose_headers")) {
    cors.expose_headers = header_names(r, *n, prefix + " expose_headers");
  }
  if (const toml::node* n = table->get("max_age")) {
    cors.max_age = r.duration_of(*n, prefix + " max_age");
  }
  if (const toml::node* n = table->get("allow_credentials")) {
    const auto* value = n->as_boolean();
    if (value == nullptr) r.fail(line_of(*n), prefix + " allow_credentials must be true or false");
    cors.allow_credentials = value->get();
    if (cors.allow_credentials) {
      for (const std::string& origin : cors.allow_origins) {
        // Browsers refuse credentials with a wildcard answer, and echoing any origin with
        // credentials would hand every site the user's cookies.
        if (origin == "*") {
          r.fail(line_of(*n),
                 prefix + " allow_credentials cannot be used with allow_origins \"*\"");
        }
      }
    }
  }
  return cors;
}

}  // namespace grelay
