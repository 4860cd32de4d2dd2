// The Docker proxy's reading of JSON bodies and image references. The
// daemon is Go: it matches keys case-insensitively (with Unicode folding),
// lets the last duplicate win, and normalises image names; a body or
// reference the proxy reads one way and the daemon another must be refused.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "docker/image_ref.hpp"
#include "docker/strict_json.hpp"

using gh::docker::canonical;
using gh::docker::glob_match;
using gh::docker::image_allowed;
using gh::docker::known_keys;
using gh::docker::normalise_image;
using gh::docker::parse_strict;

namespace {

std::string rule_of(std::string_view body, size_t depth = 32) {
  auto j = parse_strict(body, depth);
  return j ? "" : j.error().rule;
}

}  // namespace

TEST_CASE("parse_strict accepts ordinary JSON and forwards what it read") {
  auto j = parse_strict(R"({"Image":"busybox","Cmd":["echo","hi"],"HostConfig":{"Memory":0,"X":null},"F":1.5})");
  REQUIRE(j);
  CHECK((*j)["Image"] == "busybox");
  CHECK((*j)["Cmd"][1] == "hi");
  CHECK((*j)["HostConfig"]["X"].is_null());
  CHECK(canonical(*j) == R"({"Cmd":["echo","hi"],"F":1.5,"HostConfig":{"Memory":0,"X":null},"Image":"busybox"})");
  // Escapes in keys are decoded before the checks see them.
  auto e = parse_strict(R"({"Privil\u0065ged":true})");
  REQUIRE(e);
  CHECK(e->contains("Privileged"));
  CHECK(parse_strict("[1,[2,[3]]]"));
  CHECK(parse_strict("\"x\""));
  CHECK(parse_strict(R"({"a":{},"b":[],"c":{"a":1}})"));  // the same key in different objects is fine
}

TEST_CASE("parse_strict: json-syntax") {
  CHECK(rule_of("") == "json-syntax");
  CHECK(rule_of("{") == "json-syntax");
  CHECK(rule_of(R"({"a":1} x)") == "json-syntax");
  CHECK(rule_of(R"({"a":1,})") == "json-syntax");
  CHECK(rule_of("{\"a\":\"\xff\"}") == "json-syntax");  // invalid UTF-8
  CHECK(rule_of(R"({"Memory":1e400})") == "json-syntax");  // nlohmann's infinity would be forwarded as null
  CHECK(parse_strict("{").error().status == 400);
}

TEST_CASE("parse_strict: json-duplicate-key") {
  auto j = parse_strict(R"({"Privileged":false,"Privileged":true})");
  REQUIRE_FALSE(j);
  CHECK(j.error().rule == "json-duplicate-key");
  CHECK(j.error().status == 400);
  CHECK(j.error().message.find("Privileged") != std::string::npos);
  CHECK(rule_of(R"({"HostConfig":{"Binds":[],"Binds":["/:/h"]}})") == "json-duplicate-key");
}

TEST_CASE("parse_strict: json-case-collision") {
  CHECK(rule_of(R"({"Privileged":false,"privileged":true})") == "json-case-collision");
  CHECK(rule_of(R"({"HostConfig":{"CapAdd":null,"CAPADD":["ALL"]}})") == "json-case-collision");
}

TEST_CASE("parse_strict: json-non-ascii-key") {
  // U+017F LATIN SMALL LETTER LONG S folds to 's' in Go's key matching.
  CHECK(rule_of("{\"Privileged\":false,\"Privilege\xc5\xbf\":true}") == "json-non-ascii-key");
  CHECK(rule_of("{\"Privilege\\u017f\":true}") == "json-non-ascii-key");  // escaped, same key
  // U+212A KELVIN SIGN folds to 'k'.
  CHECK(rule_of("{\"HostConfig\":{\"Lin\xe2\x84\xaas\":[\"x:y\"]}}") == "json-non-ascii-key");
  // Values may hold anything.
  CHECK(rule_of("{\"Env\":[\"A=\xc5\xbf\"]}") == "");
}

TEST_CASE("parse_strict: json-depth") {
  std::string deep;
  for (int i = 0; i < 33; ++i) deep += "[";
  for (int i = 0; i < 33; ++i) deep += "]";
  CHECK(rule_of(deep) == "json-depth");
  CHECK(rule_of(deep.substr(1, 64)) == "");  // exactly 32 levels
  CHECK(rule_of(R"({"a":{"b":{}}})", 2) == "json-depth");
  CHECK(rule_of(R"({"a":{"b":1}})", 2) == "");
}

TEST_CASE("known_keys: unknown-key names the key and where, case included") {
  auto j = parse_strict(R"({"Memory":1,"privileged":true})");
  REQUIRE(j);
  auto k = known_keys(*j, {"Memory", "Privileged"}, "HostConfig");
  REQUIRE_FALSE(k);
  CHECK(k.error().rule == "unknown-key");
  CHECK(k.error().status == 403);
  CHECK(k.error().message.find("HostConfig.privileged is not a key the proxy knows") == 0);
  CHECK(k.error().message.find("case included") != std::string::npos);
  CHECK(known_keys(*j, {"Memory", "privileged"}, ""));
  auto top = known_keys(*j, {"Memory"}, "");
  REQUIRE_FALSE(top);
  CHECK(top.error().message.find("privileged is not") == 0);
  CHECK(known_keys(nlohmann::json::array(), {"a"}, ""));  // not an object: the caller's type check
}

TEST_CASE("normalise_image: Docker's normalisation") {
  CHECK(normalise_image("busybox") == "docker.io/library/busybox:latest");
  CHECK(normalise_image("busybox:1.36") == "docker.io/library/busybox:1.36");
  CHECK(normalise_image("foo/bar:1") == "docker.io/foo/bar:1");
  CHECK(normalise_image("docker.io/busybox") == "docker.io/library/busybox:latest");
  CHECK(normalise_image("index.docker.io/foo/bar") == "docker.io/foo/bar:latest");
  CHECK(normalise_image("index.docker.io/busybox") == "docker.io/library/busybox:latest");
  CHECK(normalise_image("reg.example:5000/x/y") == "reg.example:5000/x/y:latest");
  CHECK(normalise_image("localhost/x") == "localhost/x:latest");
  CHECK(normalise_image("ghcr.io/a/b/c:v1.2-rc_3") == "ghcr.io/a/b/c:v1.2-rc_3");
  CHECK(normalise_image("reg:5000") == "docker.io/library/reg:5000");  // a tag, not a port
  CHECK(normalise_image("Reg.Example/x") == "Reg.Example/x:latest");   // hosts keep their case
  CHECK(normalise_image("a__b/c.d/e-f---g") == "docker.io/a__b/c.d/e-f---g:latest");
  const std::string hex(64, 'a');
  CHECK(normalise_image("x@sha256:" + hex) == "docker.io/library/x@sha256:" + hex);
  CHECK(normalise_image("x:1@sha256:" + hex) == "docker.io/library/x:1@sha256:" + hex);
}

TEST_CASE("normalise_image: what is not a reference is empty") {
  const std::string hex(64, 'a');
  for (const char* bad : {"", "Busybox", "foo/Bar", "busy box", "busybox\n", "a\tb", "x:", ":tag", "x@sha256:abc",
                          "x@md5:0123456789abcdef0123456789abcdef", "a..b", "a___b", "-a", "a-", "x/", "/x", "x//y",
                          "reg:port/x", "x:-tag", "[::1]:5000/x"})
    CHECK_MESSAGE(normalise_image(bad).empty(), bad);
  CHECK(normalise_image(hex).empty());                // an image ID, not a name
  CHECK(normalise_image("sha256:" + hex).empty());    // likewise
  CHECK(normalise_image("x:" + std::string(129, 'a')).empty());
  CHECK(normalise_image(std::string(250, 'a')).empty());  // name over 255 once normalised
}

TEST_CASE("glob_match: * stays within a path component, ** crosses") {
  CHECK(glob_match("docker.io/library/*", "docker.io/library/busybox:latest"));
  CHECK_FALSE(glob_match("docker.io/library/*", "docker.io/library/x/y:1"));
  CHECK(glob_match("ghcr.io/acme/**", "ghcr.io/acme/a/b/c:1"));
  CHECK(glob_match("**", "anything/at/all"));
  CHECK(glob_match("a?c", "abc"));
  CHECK_FALSE(glob_match("a?c", "a/c"));
  CHECK(glob_match("*/*", "a/b"));
  CHECK_FALSE(glob_match("*", "a/b"));
  CHECK(glob_match("docker.io/library/busybox:*", "docker.io/library/busybox:1.36"));
  CHECK_FALSE(glob_match("docker.io/library/busybox:*", "docker.io/library/busybox-evil:1"));
  CHECK(glob_match(std::string(40, '*') + "x", std::string(200, 'a') + "x"));
}

TEST_CASE("image_allowed: patterns against the normalised reference") {
  std::vector<std::string> pats = {"busybox", "docker.io/library/alpine:*", "ghcr.io/acme/**"};
  CHECK(image_allowed(pats, "busybox"));
  CHECK(image_allowed(pats, "docker.io/library/busybox:latest"));
  CHECK(image_allowed(pats, "index.docker.io/library/busybox"));
  CHECK_FALSE(image_allowed(pats, "busybox:1.36"));  // a plain pattern is one reference
  CHECK(image_allowed(pats, "alpine:3.19"));
  CHECK(image_allowed(pats, "alpine"));
  CHECK(image_allowed(pats, "ghcr.io/acme/tools/x:1"));
  CHECK_FALSE(image_allowed(pats, "ghcr.io/other/x:1"));
  CHECK_FALSE(image_allowed(pats, "evil.io/library/alpine:1"));
  CHECK_FALSE(image_allowed(pats, "Alpine"));  // not a reference
  CHECK_FALSE(image_allowed({"**"}, std::string(64, 'a')));  // an ID is never allowed by a pattern
  CHECK_FALSE(image_allowed({"alpine:*"}, "alpine:3"));  // a glob must spell the normalised form
  CHECK_FALSE(image_allowed({}, "busybox"));
}
