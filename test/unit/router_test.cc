#include "route/router.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "grelay/config.h"

using grelay::Router;

namespace {

// A config with one listener, clusters "a" and "b", and |routes| (TOML [[route]] tables).
std::shared_ptr<const grelay::Config> config_with(const std::string& routes) {
  return grelay::parse_config("[[listener]]\naddress = \"127.0.0.1:50050\"\n" + routes +
                                  "[[cluster]]\nname = \"a\"\nendpoints = [\"127.0.0.1:1\"]\n"
                                  "[[cluster]]\nname = \"b\"\nendpoints = [\"127.0.0.1:2\"]\n",
                              "router_test.toml");
}

// Index of the route |router| picks, or -1 for no match.
int pick(const Router& router, const grelay::Config& config, std::string_view path,
         std::string_view authority = "localhost:50050") {
  const grelay::RouteConfig* route = router.match(path, authority);
  if (route == nullptr) return -1;
  return static_cast<int>(route - config.routes.data());
}

}  // namespace

TEST_CASE("path routes match exactly") {
  auto config = config_with("[[route]]\npath = \"/pkg.Svc/Get\"\ncluster = \"a\"\n");
  Router router(*config);
  CHECK(pick(router, *config, "/pkg.Svc/Get") == 0);
  CHECK(pick(router, *config, "/pkg.Svc/GetMore") == -1);
  CHECK(pick(router, *config, "/pkg.Svc/Ge") == -1);
  CHECK(pick(router, *config, "/pkg.svc/Get") == -1);
  CHECK(pick(router, *config, "") == -1);
}

TEST_CASE("service routes match any method of the service") {
  auto config = config_with("[[route]]\nservice = \"pkg.Svc\"\ncluster = \"a\"\n");
  Router router(*config);
  CHECK(pick(router, *config, "/pkg.Svc/Get") == 0);
  CHECK(pick(router, *config, "/pkg.Svc/M") == 0);
  // No method, a nested '/', another service sharing the prefix, a missing leading '/'.
  CHECK(pick(router, *config, "/pkg.Svc/") == -1);
  CHECK(pick(router, *config, "/pkg.Svc") == -1);
  CHECK(pick(router, *config, "/pkg.Svc/Get/x") == -1);
  CHECK(pick(router, *config, "/pkg.Svc2/Get") == -1);
  CHECK(pick(router, *config, "/pkg.Sv/Get") == -1);
  CHECK(pick(router, *config, "pkg.Svc/Get") == -1);
  CHECK(pick(router, *config, "xpkg.Svc/Get") == -1);
  CHECK(pick(router, *config, "/other.Svc/Get") == -1);
  CHECK(pick(router, *config, "") == -1);
}

TEST_CASE("prefix routes match by starts-with") {
  auto config = config_with("[[route]]\nprefix = \"/pkg.\"\ncluster = \"a\"\n");
  Router router(*config);
  CHECK(pick(router, *config, "/pkg.Svc/Get") == 0);
  CHECK(pick(router, *config, "/pkg.") == 0);
  CHECK(pick(router, *config, "/pkg") == -1);
  CHECK(pick(router, *config, "/other.Svc/Get") == -1);
}

TEST_CASE("a catch-all route matches everything") {
  auto config = config_with("[[route]]\nnone = true\ncluster = \"b\"\n");
  Router router(*config);
  CHECK(pick(router, *config, "/pkg.Svc/Get") == 0);
  CHECK(pick(router, *config, "") == 0);
  CHECK(pick(router, *config, "/anything", "") == 0);
  CHECK(router.match("/x", "h")->cluster_index == 1);
}

TEST_CASE("the first matching route wins") {
  auto config = config_with(
      "[[route]]\npath = \"/pkg.Svc/Special\"\ncluster = \"b\"\n"
      "[[route]]\nservice = \"pkg.Svc\"\ncluster = \"a\"\n"
      "[[route]]\nprefix = \"/pkg.\"\ncluster = \"b\"\n"
      "[[route]]\nnone = true\ncluster = \"a\"\n"
      "[[route]]\nservice = \"never.Reached\"\ncluster = \"b\"\n");
  Router router(*config);
  CHECK(pick(router, *config, "/pkg.Svc/Special") == 0);
  CHECK(pick(router, *config, "/pkg.Svc/Other") == 1);
  CHECK(pick(router, *config, "/pkg.Other/Get") == 2);
  CHECK(pick(router, *config, "/zzz.Z/Z") == 3);
  CHECK(pick(router, *config, "/never.Reached/X") == 3);
}

TEST_CASE("no routes, no match") {
  auto config = config_with("");
  Router router(*config);
  CHECK(router.match("/pkg.Svc/Get", "localhost") == nullptr);
}

TEST_CASE("authority without a port matches that host on any port") {
  auto config = config_with(
      "[[route]]\nnone = true\nauthority = \"api.example.com\"\ncluster = \"a\"\n"
      "[[route]]\nnone = true\nauthority = \"[::1]\"\ncluster = \"b\"\n");
  Router router(*config);
  CHECK(pick(router, *config, "/a.B/C", "api.example.com") == 0);
  CHECK(pick(router, *config, "/a.B/C", "api.example.com:443") == 0);
  CHECK(pick(router, *config, "/a.B/C", "API.Example.COM:8080") == 0);
  CHECK(pick(router, *config, "/a.B/C", "api.example.com:") == -1);
  CHECK(pick(router, *config, "/a.B/C", "api.example.com:x") == -1);
  CHECK(pick(router, *config, "/a.B/C", "api.example.comx") == -1);
  CHECK(pick(router, *config, "/a.B/C", "api.example.co") == -1);
  CHECK(pick(router, *config, "/a.B/C", "www.example.com") == -1);
  CHECK(pick(router, *config, "/a.B/C", "") == -1);
  CHECK(pick(router, *config, "/a.B/C", "[::1]") == 1);
  CHECK(pick(router, *config, "/a.B/C", "[::1]:50050") == 1);
  CHECK(pick(router, *config, "/a.B/C", "[::2]:50050") == -1);
}

TEST_CASE("authority with a port matches only that port") {
  auto config = config_with(
      "[[route]]\nnone = true\nauthority = \"API.example.com:443\"\ncluster = \"a\"\n"
      "[[route]]\nnone = true\nauthority = \"[::1]:8443\"\ncluster = \"b\"\n");
  Router router(*config);
  CHECK(pick(router, *config, "/a.B/C", "api.example.com:443") == 0);
  CHECK(pick(router, *config, "/a.B/C", "api.EXAMPLE.com:443") == 0);
  CHECK(pick(router, *config, "/a.B/C", "api.example.com:4430") == -1);
  CHECK(pick(router, *config, "/a.B/C", "api.example.com:80") == -1);
  CHECK(pick(router, *config, "/a.B/C", "api.example.com") == -1);
  CHECK(pick(router, *config, "/a.B/C", "[::1]:8443") == 1);
  CHECK(pick(router, *config, "/a.B/C", "[::1]") == -1);
}

TEST_CASE("authority and path must both match") {
  auto config = config_with(
      "[[route]]\nservice = \"pkg.Svc\"\nauthority = \"internal\"\ncluster = \"b\"\n"
      "[[route]]\nservice = \"pkg.Svc\"\ncluster = \"a\"\n");
  Router router(*config);
  CHECK(pick(router, *config, "/pkg.Svc/Get", "internal:50050") == 0);
  CHECK(pick(router, *config, "/pkg.Svc/Get", "external:50050") == 1);
  CHECK(pick(router, *config, "/other.Svc/Get", "internal:50050") == -1);
}

TEST_CASE("client_san routes need a verified client certificate with that SAN") {
  auto config = config_with(
      "[[route]]\nservice = \"pkg.Svc\"\nclient_san = \"ops.test\"\ncluster = \"b\"\n"
      "[[route]]\nservice = \"pkg.Svc\"\ncluster = \"a\"\n");
  Router router(*config);
  const std::vector<std::string> ops = {"other.test", "ops.test"};
  const std::vector<std::string> other = {"other.test", "spiffe://ops.test"};
  const std::vector<std::string> none;
  CHECK(router.match("/pkg.Svc/Get", "h", &ops) == &config->routes[0]);
  CHECK(router.match("/pkg.Svc/Get", "h", &other) == &config->routes[1]);
  CHECK(router.match("/pkg.Svc/Get", "h", &none) == &config->routes[1]);
  CHECK(router.match("/pkg.Svc/Get", "h") == &config->routes[1]);
}
