#include "config/tls_keys.h"

#include <string>
#include <utility>
#include <vector>

#include "config/config_rules.h"
#include "config/tls_files.h"

namespace grelay {
namespace {

TlsCertificate parse_certificate(const ConfigReader& r, const toml::table& table, int line,
                                 std::string_view where) {
  TlsCertificate pair;
  pair.line = line;
  const toml::node* cert = table.get("cert");
  const toml::node* key = table.get("key");
  if (cert == nullptr) r.fail(line, std::string(where) + " is missing 'cert'");
  if (key == nullptr) r.fail(line, std::string(where) + " is missing 'key'");
  pair.cert = r.file_of(*cert, std::string(where) + " cert");
  pair.key = r.file_of(*key, std::string(where) + " key");
  if (std::string why = check_cert_pair(pair.cert, pair.key); !why.empty()) r.fail(line, why);
  return pair;
}

}  // namespace

ListenerTlsConfig parse_listener_tls(const ConfigReader& r, const toml::node& node) {
  const toml::table* table = node.as_table();
  if (table == nullptr) {
    r.fail(line_of(node),
           "[[listener]] tls must be a table: tls = { cert = \"...\", key = \"...\" }");
  }
  r.check_keys(*table, {"cert", "key", "certs", "client_ca", "verify"}, "in [[listener]] tls");
  ListenerTlsConfig tls;
  tls.line = line_of(node);
  if (table->get("cert") || table->get("key")) {
    tls.certificates.push_back(parse_certificate(r, *table, tls.line, "[[listener]] tls"));
  }
  if (const toml::node* n = table->get("certs")) {
    const toml::array* array = n->as_array();
    if (array == nullptr || array->empty()) {
      r.fail(line_of(*n),
             "[[listener]] tls certs must be a non-empty array of tables "
             "{ names = [...], cert = \"...\", key = \"...\" }");
    }
    for (const toml::node& element : *array) {
      const toml::table* entry = element.as_table();
      if (entry == nullptr)
        r.fail(line_of(element), "[[listener]] tls certs entries must be tables");
      r.check_keys(*entry, {"names", "cert", "key"}, "in [[listener]] tls certs");
      const toml::node* names = entry->get("names");
      if (names == nullptr)
        r.fail(line_of(element), "[[listener]] tls certs entry is missing 'names'");
      std::vector<std::string> list = r.strings_of(*names, "[[listener]] tls certs names");
      if (list.empty()) r.fail(line_of(*names), "[[listener]] tls certs names must not be empty");
      for (std::string& name : list) {
        for (char& c : name)
          c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
        if (std::string why = certificate_name_error(name); !why.empty()) {
          r.fail(line_of(*names), why);
        }
      }
      TlsCertificate pair =
          parse_certificate(r, *entry, line_of(element), "[[listener]] tls certs entry");
      pair.names = std::move(list);
      tls.certificates.push_back(std::move(pair));
    }
  }
  if (tls.certificates.empty()) {
    r.fail(tls.line, "[[listener]] tls needs cert and key, or certs = [{ names, cert, key }]");
  }
  if (const toml::node* n = table->get("client_ca")) {
    tls.client_ca = r.file_of(*n, "[[listener]] tls client_ca");
    if (std::string why = check_ca(tls.client_ca); !why.empty()) r.fail(line_of(*n), why);
    tls.client_verify = ClientCertMode::require;
  }
  if (const toml::node* n = table->get("verify")) {
    std::string verify = r.string_of(*n, "[[listener]] tls verify");
    if (verify == "require") {
      tls.client_verify = ClientCertMode::require;
    } else if (verify == "optional") {
      tls.client_verify = ClientCertMode::optional;
    } else {
      r.fail(line_of(*n), "unknown [[listener]] tls verify " + quoted(verify) +
                              " (supported: require, optional)");
    }
    if (tls.client_ca.empty()) {
      r.fail(line_of(*n),
             "[[listener]] tls verify needs client_ca (the CA client certificates "
             "must chain to)");
    }
  }
  return tls;
}

ClusterTlsConfig parse_cluster_tls(const ConfigReader& r, const toml::node& node) {
  const toml::table* table = node.as_table();
  if (table == nullptr)
    r.fail(line_of(node), "[[cluster]] tls must be a table: tls = { ca = \"...\" }");
  r.check_keys(*table, {"ca", "cert", "key", "server_name", "verify"}, "in [[cluster]] tls");
  ClusterTlsConfig tls;
  tls.line = line_of(node);
  if (const toml::node* n = table->get("ca")) {
    tls.ca = r.file_of(*n, "[[cluster]] tls ca");
    if (std::string why = check_ca(tls.ca); !why.empty()) r.fail(line_of(*n), why);
  }
  if (table->get("cert") || table->get("key")) {
    TlsCertificate pair = parse_certificate(r, *table, tls.line, "[[cluster]] tls");
    tls.cert = std::move(pair.cert);
    tls.key = std::move(pair.key);
  }
  if (const toml::node* n = table->get("server_name")) {
    tls.server_name = r.string_of(*n, "[[cluster]] tls server_name");
    if (std::string why = server_name_error(tls.server_name); !why.empty()) {
      r.fail(line_of(*n), why);
    }
  }
  if (const toml::node* n = table->get("verify")) {
    const auto* value = n->as_boolean();
    if (value == nullptr) r.fail(line_of(*n), "[[cluster]] tls verify must be true or false");
    tls.verify = value->get();
  }
  return tls;
}

}  // namespace grelay
