#include "dispatch/init.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <set>

#include "agent/config.hpp"
#include "agent/token.hpp"
#include "common/unique_fd.hpp"
#include "policy/values.hpp"
#include "protocol/protocol.hpp"

namespace gh::dispatch {
namespace {

namespace proto = gh::protocol;

template <typename T, void (*Free)(T*)>
struct Freer {
  void operator()(T* p) const { Free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY, EVP_PKEY_free>>;
using KeyCtx = std::unique_ptr<EVP_PKEY_CTX, Freer<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using Cert = std::unique_ptr<X509, Freer<X509, X509_free>>;
using Bio = std::unique_ptr<BIO, Freer<BIO, BIO_free_all>>;
using Bignum = std::unique_ptr<BIGNUM, Freer<BIGNUM, BN_free>>;
using Names = std::unique_ptr<GENERAL_NAMES, Freer<GENERAL_NAMES, GENERAL_NAMES_free>>;
using Ext = std::unique_ptr<X509_EXTENSION, Freer<X509_EXTENSION, X509_EXTENSION_free>>;

// What OpenSSL said last, for an error message.
std::string ssl_error(const std::string& what) {
  std::string m = "cannot " + what;
  if (unsigned long e = ERR_get_error(); e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    m += std::string(": ") + buf;
  }
  ERR_clear_error();
  return m;
}

// Characters a path may hold here: it is written into YAML and into the
// printed shell commands unquoted, so nothing either would read specially.
bool safe_path(const std::string& p) {
  return !p.empty() && std::all_of(p.begin(), p.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::strchr("/._+-", c) != nullptr;
  });
}

std::string octal(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

std::string joined(const std::vector<std::string>& v, const std::string& sep = ", ") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

Result<Key> make_key() {
  KeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) <= 0 || EVP_PKEY_CTX_set_group_name(ctx.get(), "P-256") <= 0 ||
      EVP_PKEY_generate(ctx.get(), &raw) <= 0)
    return err(ssl_error("make an EC P-256 key"));
  return Key(raw);
}

Status add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Ext ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
    return err(ssl_error(std::string("add the extension ") + OBJ_nid2sn(nid) + " " + value));
  return ok_status();
}

// A version 3 certificate for `key`, with a random positive 127-bit serial,
// valid from an hour ago (clocks drift) for `days` days.
Result<Cert> new_cert(EVP_PKEY* key, const std::string& common_name, int days) {
  Cert cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) return err(ssl_error("make a certificate"));
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return err(ssl_error("draw a serial number"));
  serial[0] &= 0x7f;
  Bignum bn(BN_bin2bn(serial, sizeof serial, nullptr));
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get()))) return err(ssl_error("set the serial number"));
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) ||
      !X509_time_adj_ex(X509_getm_notAfter(cert.get()), days, 0, nullptr))
    return err(ssl_error("set the validity"));
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>("gatehouse-dispatch init"), -1, -1, 0) ||
      !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0))
    return err(ssl_error("set the subject name " + common_name));
  if (X509_set_pubkey(cert.get(), key) != 1) return err(ssl_error("set the public key"));
  return cert;
}

Result<std::string> pem_of_cert(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return err(ssl_error("write a certificate"));
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// PKCS#8, unencrypted: the dispatch loads it without a passphrase.
Result<std::string> pem_of_key(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_secmem()));
  if (!bio) bio.reset(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return err(ssl_error("write a private key"));
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string not_after(X509* cert) {
  struct tm t {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &t) != 1) return "?";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &t);
  return buf;
}

struct Made {
  std::string ca_cert, ca_key, server_cert, server_key;
  std::string ca_not_after, server_not_after;
};

Result<Made> make_certificates(const std::vector<std::string>& names, const std::vector<std::string>& addresses) {
  const std::string host = names.empty() ? addresses.front() : names.front();
  Made m;

  auto ca_key = make_key();
  if (!ca_key) return ca_key.error();
  auto ca = new_cert(ca_key->get(), "Gatehouse CA for " + host, kInitCaDays);
  if (!ca) return ca.error();
  if (X509_set_issuer_name(ca->get(), X509_get_subject_name(ca->get())) != 1) return err(ssl_error("name the CA's issuer"));
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                            std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"},
                            std::pair{NID_subject_key_identifier, "hash"},
                            std::pair{NID_authority_key_identifier, "keyid:always"}})
    if (auto s = add_ext(ca->get(), ca->get(), nid, value); !s) return s.error();
  if (X509_sign(ca->get(), ca_key->get(), EVP_sha256()) <= 0) return err(ssl_error("sign the CA certificate"));

  auto server_key = make_key();
  if (!server_key) return server_key.error();
  auto server = new_cert(server_key->get(), host, kInitServerDays);
  if (!server) return server.error();
  if (X509_set_issuer_name(server->get(), X509_get_subject_name(ca->get())) != 1)
    return err(ssl_error("name the server certificate's issuer"));
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:FALSE"},
                            std::pair{NID_key_usage, "critical,digitalSignature"},
                            std::pair{NID_ext_key_usage, "serverAuth"},
                            std::pair{NID_subject_key_identifier, "hash"},
                            std::pair{NID_authority_key_identifier, "keyid:always"}})
    if (auto s = add_ext(server->get(), ca->get(), nid, value); !s) return s.error();
  // subjectAltName built name by name, not from a "DNS:a,IP:b" string: a
  // name cannot smuggle in another entry.
  Names san(sk_GENERAL_NAME_new_null());
  if (!san) return err(ssl_error("make the subjectAltName"));
  auto push = [&](int type, ASN1_STRING* value) {
    GENERAL_NAME* g = GENERAL_NAME_new();
    if (!g || !value) {
      GENERAL_NAME_free(g);
      ASN1_STRING_free(value);
      return false;
    }
    GENERAL_NAME_set0_value(g, type, value);
    if (sk_GENERAL_NAME_push(san.get(), g) <= 0) {
      GENERAL_NAME_free(g);
      return false;
    }
    return true;
  };
  for (const auto& n : names) {
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    if (s && ASN1_STRING_set(s, n.data(), static_cast<int>(n.size())) != 1) {
      ASN1_STRING_free(s);
      s = nullptr;
    }
    if (!push(GEN_DNS, s)) return err(ssl_error("add DNS:" + n + " to the subjectAltName"));
  }
  for (const auto& a : addresses)
    if (!push(GEN_IPADD, a2i_IPADDRESS(a.c_str()))) return err(ssl_error("add IP:" + a + " to the subjectAltName"));
  if (X509_add1_ext_i2d(server->get(), NID_subject_alt_name, san.get(), 0, X509V3_ADD_DEFAULT) != 1)
    return err(ssl_error("add the subjectAltName"));
  if (X509_sign(server->get(), ca_key->get(), EVP_sha256()) <= 0) return err(ssl_error("sign the server certificate"));

  auto ca_pem = pem_of_cert(ca->get());
  auto ca_key_pem = pem_of_key(ca_key->get());
  auto server_pem = pem_of_cert(server->get());
  auto server_key_pem = pem_of_key(server_key->get());
  for (auto* r : {&ca_pem, &ca_key_pem, &server_pem, &server_key_pem})
    if (!*r) return r->error();
  m.ca_cert = *ca_pem;
  m.ca_key = *ca_key_pem;
  m.server_cert = *server_pem;
  m.server_key = *server_key_pem;
  m.ca_not_after = not_after(ca->get());
  m.server_not_after = not_after(server->get());
  return m;
}

// 32 random bytes in hex: what `openssl rand -hex 32` makes (docs/dispatch.md).
Result<std::string> make_token() {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return err(ssl_error("draw a runner token"));
  static const char hex[] = "0123456789abcdef";
  std::string t;
  for (unsigned char b : raw) {
    t += hex[b >> 4];
    t += hex[b & 15];
  }
  OPENSSL_cleanse(raw, sizeof raw);
  if (std::string why = proto::token_problem(t); !why.empty()) return err("made a runner token that " + why);
  return t;
}

// Makes the folders leading to `dir` that are missing (0755, as mkdir -p
// would under a usual umask; this process runs under 077).
Status make_parents(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i < dir.size() && dir[i] != '/') continue;
    const std::string p = dir.substr(0, i);
    if (mkdir(p.c_str(), i == dir.size() ? 0700 : 0755) == 0) {
      if (i < dir.size() && chmod(p.c_str(), 0755) != 0) return err("cannot chmod 755 " + p + ": " + strerror(errno));
    } else if (errno != EEXIST) {
      return err("cannot make " + p + ": " + strerror(errno));
    }
  }
  return ok_status();
}

Result<std::vector<std::string>> entries_of(int dirfd) {
  int d = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* dir = d >= 0 ? fdopendir(d) : nullptr;
  if (!dir) {
    if (d >= 0) close(d);
    return err(std::string("cannot list the directory: ") + strerror(errno));
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(dir))
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) names.push_back(e->d_name);
  closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

// Writes a new file (replacing one of the same name only with `replace`),
// with exactly `mode`, synced before it counts as written.
Status write_file(int dirfd, const std::string& dir, const char* name, const std::string& text, mode_t mode,
                  bool replace) {
  const std::string path = dir + "/" + name;
  if (replace && unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
    return err("cannot replace " + path + ": " + strerror(errno) + (errno == EISDIR ? " (remove that directory)" : ""));
  UniqueFd fd(openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (fd.get() < 0) return err("cannot create " + path + ": " + strerror(errno));
  if (fchmod(fd.get(), mode) != 0) return err("cannot chmod " + octal(mode) + " " + path + ": " + strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return err("cannot write " + path + ": " + strerror(errno));
    done += static_cast<size_t>(n);
  }
  if (fsync(fd.get()) != 0) return err("cannot sync " + path + ": " + strerror(errno));
  return ok_status();
}

std::string default_runner() {
  char host[HOST_NAME_MAX + 1] = {};
  if (gethostname(host, sizeof host - 1) == 0) {
    std::string h = host;
    if (size_t dot = h.find('.'); dot != std::string::npos) h.resize(dot);
    if (proto::runner_name_problem(h).empty()) return h;
  }
  return "runner-1";
}

std::string url_host(const std::string& host) { return host.find(':') != std::string::npos ? "[" + host + "]" : host; }

std::string agent_config_text(const InitResult& r) {
  const std::string& d = r.dir;
  return "# The agent's configuration (docs/agent.md), written by `gatehouse-dispatch init`\n"
         "# to match the control plane set up beside it. Start the agent with\n"
         "#   gatehouse serve --config " + d + "/" + kInitAgentConfig + "\n"
         "api:\n"
         "  url: " + r.url + "\n"
         "  auth_token_file: " + d + "/" + kInitAgentToken + "  # root's, mode 0600: the broker opens it\n"
         "  ca_file: " + d + "/" + kInitCaCert + "  # the CA that signed the dispatch's certificate\n"
         "runner:\n"
         "  name: " + r.runner + "\n"
         "  resource_class: " + r.resource_class + "\n"
         "  working_directory: " + kInitWorkRoot + "  # must be a nosuid,nodev mount (scripts/prepare-host)\n"
         "  spool_directory: " + d + "/" + kInitSpool + "  # the broker makes it, the agent's (0700)\n"
         "policy: " + d + "/" + kInitPolicy + "\n";
}

std::string policy_text() {
  return "# The policy `gatehouse serve` admits jobs under (docs/policy.md), written by\n"
         "# `gatehouse-dispatch init`. Every job gets the built-in profile: no network but\n"
         "# loopback, no Docker, no secrets, the default resources. Add profiles and rules\n"
         "# to widen it for your projects (examples/policy.yaml); check a change with\n"
         "# `gatehouse policy check` and `gatehouse policy diff`, then SIGHUP the agent.\n"
         "version: 1\n"
         "profiles:\n"
         "  default: {}\n";
}

std::string job_text() {
  return "# A first job: gatehouse-dispatch submit THIS-FILE --job hello --db QUEUE\n"
         "version: 2.1\n"
         "jobs:\n"
         "  hello:\n"
         "    machine: true\n"
         "    steps:\n"
         "      - run:\n"
         "          name: say hello\n"
         "          command: echo \"hello from gatehouse\"\n";
}

// What the agent's host still needs before `gatehouse serve` can start
// with these files, each with the command that fixes it.
std::vector<std::string> host_problems(const InitResult& r) {
  std::vector<std::string> out;
  if (!getpwnam("gatehouse"))
    out.push_back("the agent runs as the system user `gatehouse`, which this host does not have: "
                  "useradd --system --user-group --home-dir /nonexistent --shell /usr/sbin/nologin gatehouse");
  // The agent (as `gatehouse`) reads its config and the CA file in DIR itself.
  for (size_t i = r.dir.find('/', 1); i != std::string::npos; i = r.dir.find('/', i + 1)) {
    const std::string p = r.dir.substr(0, i);
    struct stat st {};
    if (stat(p.c_str(), &st) == 0 && !(st.st_mode & S_IXOTH))
      out.push_back("the agent (user gatehouse) must reach " + r.dir + "/" + kInitAgentConfig + " and " + r.dir + "/" +
                    kInitCaCert + ", but " + p + " is mode " + octal(st.st_mode) + ": chmod o+x " + p +
                    ", or run init for a directory elsewhere");
  }
  const std::string token = r.dir + "/" + kInitAgentToken;
  if (auto fd = agent::open_runner_token(token, nullptr); !fd)
    out.push_back("the broker will refuse " + token + " as it is: " + fd.error().message);
  struct statvfs sv {};
  const std::string w = kInitWorkRoot;
  if (statvfs(w.c_str(), &sv) != 0 || !(sv.f_flag & ST_NOSUID) || !(sv.f_flag & ST_NODEV))
    out.push_back("jobs run under " + w + ", which must be a nosuid,nodev mount: scripts/prepare-host, or mkdir -p " +
                  w + " && mount --bind " + w + " " + w + " && mount -o remount,bind,nosuid,nodev " + w);
  return out;
}

}  // namespace

std::string dns_name_problem(const std::string& name) {
  if (name.empty()) return "is empty";
  if (name.size() > 253) return "is longer than 253 characters";
  if (name.find('*') != std::string::npos) return "is a wildcard; give each name the agents use";
  in6_addr a6{};
  in_addr a4{};
  if (inet_pton(AF_INET, name.c_str(), &a4) == 1 || inet_pton(AF_INET6, name.c_str(), &a6) == 1)
    return "is an IP address: give it with --address";
  size_t start = 0;
  for (;;) {
    const size_t dot = name.find('.', start);
    const std::string label = name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (label.empty()) return "has an empty label (two dots, or a dot at an end)";
    if (label.size() > 63) return "has a label longer than 63 characters";
    for (char c : label)
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
        return "holds a character a host name cannot: only letters, digits, - and dots";
    if (label.front() == '-' || label.back() == '-') return "has a label that starts or ends with -";
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (name.find_first_not_of("0123456789.") == std::string::npos) return "is all digits: an IP address goes in --address";
  return "";
}

Result<std::string> canonical_ip(const std::string& text) {
  char buf[INET6_ADDRSTRLEN];
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, text.c_str(), &a4) == 1 && inet_ntop(AF_INET, &a4, buf, sizeof buf)) return std::string(buf);
  if (inet_pton(AF_INET6, text.c_str(), &a6) == 1 && inet_ntop(AF_INET6, &a6, buf, sizeof buf)) return std::string(buf);
  return err("is not an IPv4 or IPv6 address (e.g. 127.0.0.1, 10.0.0.5 or ::1); a host name goes in --name");
}

Result<InitResult> init_site(const InitOptions& o) {
  InitResult r;
  // 1. Every option, before anything is made.
  for (const auto& n : o.names) {
    if (std::string why = dns_name_problem(n); !why.empty()) return err("--name `" + n + "` " + why);
    if (std::find(r.names.begin(), r.names.end(), n) == r.names.end()) r.names.push_back(n);
  }
  for (const auto& a : o.addresses) {
    auto ip = canonical_ip(a);
    if (!ip) return err("--address `" + a + "` " + ip.error().message);
    if (std::find(r.addresses.begin(), r.addresses.end(), *ip) == r.addresses.end()) r.addresses.push_back(*ip);
  }
  if (r.names.empty() && r.addresses.empty()) {
    r.names = {"localhost"};
    r.addresses = {"127.0.0.1"};
  }
  r.runner = o.runner.empty() ? default_runner() : o.runner;
  if (std::string why = proto::runner_name_problem(r.runner); !why.empty())
    return err("--runner `" + r.runner + "` " + why + " (1 to 128 of A-Z a-z 0-9 . _ -)");
  r.resource_class = o.resource_class;
  if (std::string why = proto::resource_class_problem(r.resource_class); !why.empty())
    return err("--resource-class `" + r.resource_class + "` " + why + " (1 to 128 of A-Z a-z 0-9 . _ / -, e.g. acme/linux)");
  if (o.port < 1 || o.port > 65535) return err("--port " + std::to_string(o.port) + " is not 1 to 65535");
  const std::string port = std::to_string(o.port);
  // The agents' URL names the first --name (the first --address without
  // one); the dispatch listens on the first --address, on loopback for
  // localhost alone, else on every IPv4 address.
  r.url = "https://" + url_host(r.names.empty() ? r.addresses.front() : r.names.front()) + ":" + port;
  const bool local_only = !r.names.empty() && std::all_of(r.names.begin(), r.names.end(),
                                                          [](const std::string& n) { return n == "localhost"; });
  r.listen = url_host(!r.addresses.empty() ? r.addresses.front() : local_only ? "127.0.0.1" : "0.0.0.0") + ":" + port;
  if (std::string why = agent::api_url_problem(r.url); !why.empty()) return err("the agents' URL " + r.url + " " + why);

  // 2. The directory: made if missing, else empty or --force.
  if (o.dir.empty()) return err("no directory given: gatehouse-dispatch init DIR");
  std::string dir = o.dir;
  if (dir.front() != '/') {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return err(std::string("cannot find the current directory: ") + strerror(errno));
    dir = std::string(cwd) + "/" + dir;
  }
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (!safe_path(dir))
    return err("the directory " + o.dir + " holds characters the agent's YAML and the printed commands would need "
               "quoted: choose a path of letters, digits and . _ + - /");
  struct stat st {};
  if (lstat(dir.c_str(), &st) == 0 && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
    return err(dir + " exists and is not a directory: choose another path");
  if (auto s = make_parents(dir); !s) return s.error();
  {
    std::unique_ptr<char, decltype(&free)> real(realpath(dir.c_str(), nullptr), &free);
    if (!real) return err("cannot resolve " + dir + ": " + strerror(errno));
    r.dir = real.get();
  }
  if (r.dir == "/" || !safe_path(r.dir) || !policy::detail::path_problem(r.dir).empty())
    return err("the directory " + o.dir + " resolves to " + r.dir + ", which cannot be used: choose a path of letters, "
               "digits and . _ + - / other than /");
  UniqueFd dirfd(open(r.dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (dirfd.get() < 0) return err("cannot open " + r.dir + ": " + strerror(errno));
  auto present = entries_of(dirfd.get());
  if (!present) return err(r.dir + ": " + present.error().message);
  const std::vector<std::string> ours = {kInitCaKey,        kInitCaCert,      kInitServerKey, kInitServerCert, kInitRunnerTokens,
                                         kInitAgentToken,   kInitAgentConfig, kInitPolicy,    kInitJob};
  if (!present->empty() && !o.force) {
    std::vector<std::string> shown(present->begin(), present->begin() + std::min<std::ptrdiff_t>(20, std::ssize(*present)));
    if (present->size() > shown.size()) shown.push_back("and " + std::to_string(present->size() - shown.size()) + " more");
    return err(r.dir + " is not empty: it holds " + joined(shown) +
               ".\n  init makes a new CA, server key and runner token there, and the dispatch and agents set up "
               "from the old ones would stop working.\n  Give init a new or empty directory, or add --force to "
               "replace " + joined(ours) + " (everything else there, such as " + kInitQueue + " and " + kInitSpool +
               ", is kept).");
  }
  for (const auto& e : *present)
    if (std::find(ours.begin(), ours.end(), e) == ours.end()) r.kept.push_back(e);
  // Root's and closed to listing; others may pass through: the agent, as
  // `gatehouse`, reads gatehouse.yaml and ca.pem and reaches its spool here.
  // The keys and tokens are 0600, so passing through shows them nothing.
  if (fchmod(dirfd.get(), 0711) != 0) return err("cannot chmod 711 " + r.dir + ": " + strerror(errno));

  // 3. The files.
  auto made = make_certificates(r.names, r.addresses);
  if (!made) return made.error();
  r.ca_not_after = made->ca_not_after;
  r.server_not_after = made->server_not_after;
  auto token = make_token();
  if (!token) return token.error();
  const std::string runner_tokens = "# NAME TOKEN, one runner a line (gatehouse-dispatch serve --runner-tokens)\n" +
                                    r.runner + " " + *token + "\n";
  const std::string agent_token = *token + "\n";
  struct Out {
    const char* name;
    const std::string& text;
    mode_t mode;
  };
  const std::string config = agent_config_text(r), pol = policy_text(), job = job_text();
  const Out files[] = {
      {kInitCaKey, made->ca_key, 0600},          {kInitCaCert, made->ca_cert, 0644},
      {kInitServerKey, made->server_key, 0600},  {kInitServerCert, made->server_cert, 0644},
      {kInitRunnerTokens, runner_tokens, 0600},  {kInitAgentToken, agent_token, 0600},
      {kInitAgentConfig, config, 0644},          {kInitPolicy, pol, 0644},
      {kInitJob, job, 0644},
  };
  Status written = ok_status();
  for (const Out& f : files)
    if (written = write_file(dirfd.get(), r.dir, f.name, f.text, f.mode, o.force); !written) break;
  for (std::string* secret : {&made->ca_key, &made->server_key, &*token})
    OPENSSL_cleanse(secret->data(), secret->size());
  if (!written)
    return err(written.error().message + "\n  " + r.dir + " is left incomplete: run init again with --force once this is fixed");

  const std::string d = r.dir + "/";
  r.commands = {
      "gatehouse-dispatch serve --listen " + r.listen + " --cert " + d + kInitServerCert + " --key " + d + kInitServerKey +
          " --db " + d + kInitQueue + " --runner-tokens " + d + kInitRunnerTokens,
      "gatehouse serve --config " + d + kInitAgentConfig,
      "gatehouse-dispatch submit " + d + kInitJob + " --job hello --db " + d + kInitQueue,
  };
  r.before = host_problems(r);
  return r;
}

int cmd_init(const InitOptions& o) {
  auto r = init_site(o);
  if (!r) {
    std::fprintf(stderr, "gatehouse-dispatch: init: %s\n", r.error().message.c_str());
    return 2;
  }
  const std::string& d = r->dir;
  std::string sans;
  for (const auto& n : r->names) sans += (sans.empty() ? "" : ", ") + n;
  for (const auto& a : r->addresses) sans += (sans.empty() ? "" : ", ") + a;
  std::printf("gatehouse-dispatch init: wrote %s (mode 0711):\n", d.c_str());
  const std::pair<std::string, std::string> rows[] = {
      {kInitCaCert, "the CA certificate, until " + r->ca_not_after + ": the agents' api.ca_file"},
      {kInitCaKey, "the CA's key (0600): it signs nothing else here; keep it or delete it"},
      {kInitServerCert, "the dispatch's certificate for " + sans + ", until " + r->server_not_after},
      {kInitServerKey, "its key (0600)"},
      {kInitRunnerTokens, "the dispatch's runner tokens (0600): runner " + r->runner + " and its token"},
      {kInitAgentToken, "the same token for the agent (0600): api.auth_token_file"},
      {kInitAgentConfig, "the agent's config: " + r->url + ", runner " + r->runner + ", class " + r->resource_class},
      {kInitPolicy, "the policy: every job under the built-in profile"},
      {kInitJob, "a one-step job to try"},
  };
  for (const auto& [name, what] : rows) std::printf("  %-15s %s\n", name.c_str(), what.c_str());
  std::printf("  %-15s (made by the dispatch) the queue\n", kInitQueue);
  std::printf("  %-15s (made by gatehouse serve) the agent's undelivered output\n", (std::string(kInitSpool) + "/").c_str());
  if (!r->kept.empty()) std::printf("Kept as they were: %s\n", joined(r->kept).c_str());
  if (!r->before.empty()) {
    std::printf("\nBefore the agent can start, this host needs:\n");
    for (const auto& b : r->before) std::printf("  - %s\n", b.c_str());
  }
  std::printf("\nNext, as root, each in its own terminal (the first two keep running):\n");
  for (const auto& c : r->commands) std::printf("  %s\n", c.c_str());
  std::printf("\nsubmit prints the task's id; follow it with: gatehouse-dispatch logs ID --follow --db %s/%s\n", d.c_str(),
              kInitQueue);
  return 0;
}

}  // namespace gh::dispatch
