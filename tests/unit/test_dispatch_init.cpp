// `gatehouse-dispatch init` (dispatch/init.cpp): the names and addresses it
// takes, and that what it writes is what the other side reads: the agent's
// config parser takes gatehouse.yaml, the policy parser policy.yaml, the job
// parser hello.yml, and OpenSSL verifies the server certificate against the
// CA for the names asked and no others.
#include <doctest/doctest.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "agent/config.hpp"
#include "dispatch/init.hpp"
#include "policy/job.hpp"
#include "policy/policy.hpp"
#include "protocol/protocol.hpp"

using gh::dispatch::canonical_ip;
using gh::dispatch::dns_name_problem;
using gh::dispatch::init_site;
using gh::dispatch::InitOptions;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/gh-dispatch-init.XXXXXX";
    REQUIRE(mkdtemp(t) != nullptr);
    path = t;
    chmod(path.c_str(), 0755);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using CertPtr = std::unique_ptr<X509, X509Free>;

CertPtr load_cert(const std::string& path) {
  FILE* f = fopen(path.c_str(), "re");
  REQUIRE(f != nullptr);
  X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
  fclose(f);
  REQUIRE(x != nullptr);
  return CertPtr(x);
}

// 1 when `leaf` chains to `ca` for a TLS server.
int verify(X509* ca, X509* leaf) {
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf, nullptr);
  X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
  const int ok = X509_verify_cert(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return ok;
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("init: host names and addresses") {
  CHECK(dns_name_problem("localhost") == "");
  CHECK(dns_name_problem("ci.example.com") == "");
  CHECK(dns_name_problem("a-1.b2.example") == "");
  CHECK(dns_name_problem("") != "");
  CHECK(dns_name_problem("*.example.com").find("wildcard") != std::string::npos);
  CHECK(dns_name_problem("10.0.0.5").find("--address") != std::string::npos);
  CHECK(dns_name_problem("::1").find("--address") != std::string::npos);
  CHECK(dns_name_problem("300.1.2.3").find("--address") != std::string::npos);
  CHECK(dns_name_problem("a..b") != "");
  CHECK(dns_name_problem(".a") != "");
  CHECK(dns_name_problem("a.") != "");
  CHECK(dns_name_problem("-a.b") != "");
  CHECK(dns_name_problem("a,DNS:evil") != "");
  CHECK(dns_name_problem("a b") != "");
  CHECK(dns_name_problem(std::string(64, 'a')) != "");
  CHECK(dns_name_problem(std::string(63, 'a')) == "");

  CHECK(*canonical_ip("127.0.0.1") == "127.0.0.1");
  CHECK(*canonical_ip("0:0:0:0:0:0:0:1") == "::1");
  CHECK(*canonical_ip("FE80::1") == "fe80::1");
  CHECK(!canonical_ip("300.1.2.3"));
  CHECK(!canonical_ip("localhost"));
  CHECK(!canonical_ip("10.0.0.5/24"));
  CHECK(!canonical_ip("fe80::1%eth0"));
  CHECK(!canonical_ip(""));
}

TEST_CASE("init: the files fit each other and their readers") {
  TempDir t;
  InitOptions o;
  o.dir = t.path + "/site";
  o.runner = "r-1";
  o.port = 9443;
  auto r = init_site(o);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  const std::string d = r->dir + "/";
  CHECK(r->dir == o.dir);
  CHECK(mode_of(r->dir) == 0711);
  for (const char* f : {"ca.key", "server.key", "runner-tokens", "token"}) CHECK_MESSAGE(mode_of(d + f) == 0600, f);
  for (const char* f : {"ca.pem", "server.pem", "gatehouse.yaml", "policy.yaml", "hello.yml"})
    CHECK_MESSAGE(mode_of(d + f) == 0644, f);
  CHECK(r->url == "https://localhost:9443");
  CHECK(r->listen == "127.0.0.1:9443");
  REQUIRE(r->commands.size() == 3);
  CHECK(r->commands[0] == "gatehouse-dispatch serve --listen 127.0.0.1:9443 --cert " + d + "server.pem --key " + d +
                              "server.key --db " + d + "queue.db --runner-tokens " + d + "runner-tokens");
  CHECK(r->commands[1] == "gatehouse serve --config " + d + "gatehouse.yaml");
  CHECK(r->commands[2] == "gatehouse-dispatch submit " + d + "hello.yml --job hello --db " + d + "queue.db");

  // The tokens: one, in both forms, as each side checks it.
  std::string token = slurp(d + "token");
  REQUIRE(token.size() == 65);
  CHECK(token.back() == '\n');
  token.pop_back();
  CHECK(gh::protocol::token_problem(token) == "");
  CHECK(slurp(d + "runner-tokens").find("\nr-1 " + token + "\n") != std::string::npos);

  // The agent's config, as the agent reads it.
  auto cfg = gh::agent::parse_agent_config(d + "gatehouse.yaml", slurp(d + "gatehouse.yaml"), {});
  REQUIRE_MESSAGE(cfg.config.has_value(), cfg.diagnostics.render());
  CHECK(cfg.config->api.url == "https://localhost:9443");
  CHECK(cfg.config->api.auth_token_file == d + "token");
  CHECK(cfg.config->api.ca_file == d + "ca.pem");
  CHECK(cfg.config->runner.name == "r-1");
  CHECK(cfg.config->runner.resource_class == "local/linux");
  CHECK(cfg.config->runner.spool_directory == d + "spool");
  CHECK(cfg.config->runner.working_directory == "/var/lib/gatehouse/work");
  CHECK(cfg.config->policy == d + "policy.yaml");

  auto pol = gh::policy::parse_policy_text(d + "policy.yaml", slurp(d + "policy.yaml"));
  CHECK_MESSAGE(pol.policy.has_value(), pol.diagnostics.render());
  auto job = gh::job::parse_job_text(d + "hello.yml", slurp(d + "hello.yml"), std::string("hello"));
  CHECK_MESSAGE(job.job.has_value(), job.diagnostics.render());

  // The certificates.
  CertPtr ca = load_cert(d + "ca.pem"), server = load_cert(d + "server.pem");
  CHECK(X509_check_ca(ca.get()) >= 1);
  CHECK(X509_check_ca(server.get()) == 0);
  CHECK(verify(ca.get(), server.get()) == 1);
  CHECK(verify(server.get(), server.get()) != 1);
  CHECK(X509_check_host(server.get(), "localhost", 0, 0, nullptr) == 1);
  CHECK(X509_check_ip_asc(server.get(), "127.0.0.1", 0) == 1);
  CHECK(X509_check_host(server.get(), "example.com", 0, 0, nullptr) != 1);
  CHECK(X509_check_ip_asc(server.get(), "::1", 0) != 1);
  CHECK((X509_get_extended_key_usage(server.get()) & XKU_SSL_SERVER) != 0);
  CHECK((X509_get_key_usage(ca.get()) & KU_KEY_CERT_SIGN) != 0);
  FILE* kf = fopen((d + "server.key").c_str(), "re");
  REQUIRE(kf != nullptr);
  EVP_PKEY* key = PEM_read_PrivateKey(kf, nullptr, nullptr, nullptr);
  fclose(kf);
  REQUIRE(key != nullptr);
  CHECK(X509_check_private_key(server.get(), key) == 1);
  CHECK(EVP_PKEY_is_a(key, "EC"));
  EVP_PKEY_free(key);

  // Again: refused, naming what is there; --force replaces ours, keeps the rest.
  std::ofstream(d + "queue.db") << "x";
  auto again = init_site(o);
  REQUIRE(!again.ok());
  CHECK(again.error().message.find("is not empty: it holds ca.key, ca.pem, gatehouse.yaml") != std::string::npos);
  CHECK(again.error().message.find("--force") != std::string::npos);
  CHECK(slurp(d + "token") == token + "\n");
  o.force = true;
  auto forced = init_site(o);
  REQUIRE_MESSAGE(forced.ok(), (forced.ok() ? "" : forced.error().message));
  CHECK(forced->kept == std::vector<std::string>{"queue.db"});
  CHECK(slurp(d + "token") != token + "\n");
  CHECK(slurp(d + "queue.db") == "x");
  CHECK(mode_of(d + "token") == 0600);
}

TEST_CASE("init: names, addresses, listen and URL") {
  TempDir t;
  InitOptions o;
  o.dir = t.path + "/net";
  o.names = {"ci.example.test", "gh.example.test", "ci.example.test"};
  o.addresses = {"10.0.0.5", "0:0:0:0:0:0:0:1"};
  auto r = init_site(o);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  CHECK(r->names == std::vector<std::string>{"ci.example.test", "gh.example.test"});
  CHECK(r->addresses == std::vector<std::string>{"10.0.0.5", "::1"});
  CHECK(r->url == "https://ci.example.test:8443");
  CHECK(r->listen == "10.0.0.5:8443");
  CertPtr server = load_cert(r->dir + "/server.pem");
  CHECK(X509_check_host(server.get(), "gh.example.test", 0, 0, nullptr) == 1);
  CHECK(X509_check_ip_asc(server.get(), "::1", 0) == 1);
  CHECK(X509_check_host(server.get(), "localhost", 0, 0, nullptr) != 1);

  InitOptions v6;
  v6.dir = t.path + "/v6";
  v6.addresses = {"::1"};
  auto r6 = init_site(v6);
  REQUIRE(r6.ok());
  CHECK(r6->url == "https://[::1]:8443");
  CHECK(r6->listen == "[::1]:8443");
  auto cfg = gh::agent::parse_agent_config("v6", slurp(r6->dir + "/gatehouse.yaml"), {});
  CHECK_MESSAGE(cfg.config.has_value(), cfg.diagnostics.render());

  InitOptions named;
  named.dir = t.path + "/named";
  named.names = {"ci.example.test"};
  auto rn = init_site(named);
  REQUIRE(rn.ok());
  CHECK(rn->listen == "0.0.0.0:8443");
  CHECK(rn->addresses.empty());
}

TEST_CASE("init: a bad option makes nothing") {
  TempDir t;
  auto refused = [&](InitOptions o, const std::string& want) {
    o.dir = t.path + "/bad";
    auto r = init_site(o);
    REQUIRE(!r.ok());
    CHECK_MESSAGE(r.error().message.find(want) != std::string::npos, r.error().message);
    struct stat st {};
    CHECK(stat(o.dir.c_str(), &st) != 0);
  };
  InitOptions o;
  o.addresses = {"300.1.2.3"};
  refused(o, "--address `300.1.2.3` is not an IPv4 or IPv6 address");
  o = {};
  o.names = {"10.0.0.5"};
  refused(o, "--name `10.0.0.5` is an IP address: give it with --address");
  o = {};
  o.runner = "a b";
  refused(o, "--runner `a b`");
  o = {};
  o.resource_class = "";
  refused(o, "--resource-class ``");
  o = {};
  o.port = 0;
  refused(o, "--port 0");
  o = {};
  o.dir = t.path + "/with space";
  auto r = init_site(o);
  REQUIRE(!r.ok());
  CHECK(r.error().message.find("letters, digits") != std::string::npos);
}
