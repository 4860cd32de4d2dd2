// `gatehouse sign` (modes and exit statuses in the header).
//
// The private key is the one secret here: it is read only from a regular
// file nobody but its owner can read or write, never echoed, and wiped from
// memory once used. A new key is created with O_EXCL at mode 0600, so an
// existing key (or a link planted where the key should go) is never
// overwritten or followed.
#include "cli/sign_command.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <optional>

#include "common/exit_status.hpp"
#include "protocol/job_signature.hpp"
#include "common/unique_fd.hpp"
#include "policy/policy.hpp"

namespace gh::cli {

namespace {

std::string mode_text(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

// A regular file of at most max_bytes. With private_file, one that group
// and others have no access to.
Result<std::string> read_file(const std::string& path, size_t max_bytes, const char* what, bool private_file) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (private_file ? O_NOFOLLOW : 0)));
  if (fd.get() < 0) return err("cannot open " + std::string(what) + " " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return err("cannot stat " + path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return err(std::string(what) + " " + path + " is not a regular file");
  if (private_file && (st.st_mode & 077) != 0)
    return err("the private key " + path + " is open to group or others (mode " + mode_text(st.st_mode) +
               "); run: chmod 600 " + path);
  if (static_cast<uint64_t>(st.st_size) > max_bytes)
    return err(std::string(what) + " " + path + " is " + std::to_string(st.st_size) + " bytes, more than the limit of " +
               std::to_string(max_bytes));
  std::string data(max_bytes + 1, '\0');
  size_t got = 0;
  int read_errno = 0;
  while (got < data.size()) {
    const ssize_t n = ::read(fd.get(), data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) read_errno = errno;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  if (read_errno != 0 || got > max_bytes) {
    if (private_file) OPENSSL_cleanse(data.data(), data.size());  // part of a key is still a secret
    return err(read_errno != 0 ? "cannot read " + path + ": " + std::strerror(read_errno)
                               : std::string(what) + " " + path + " grew past the limit while being read");
  }
  data.resize(got);
  return data;
}

// The protocol's limits (docs/protocol.md): what the agent would refuse is
// not worth signing.
std::string job_problem(const SignOptions& o) {
  if (o.job.empty() || o.job.size() > 128) return "--job must name the job: 1 to 128 characters";
  const std::pair<const char*, const std::string*> fields[] = {{"--project", &o.meta.project},
                                                               {"--branch", &o.meta.branch},
                                                               {"--tag", &o.meta.tag},
                                                               {"--revision", &o.meta.revision}};
  for (const auto& [flag, value] : fields)
    if (value->size() > protocol::kMaxMetaFieldChars)
      return std::string(flag) + " is longer than " + std::to_string(protocol::kMaxMetaFieldChars) + " characters";
  if (o.config_file.empty()) return "give the job's config file (CONFIG.yml)";
  return {};
}

int generate(const SignOptions& o) {
  auto pair = signature::generate_key();
  if (!pair) {
    std::cerr << "gatehouse sign: " << pair.error().message << "\n";
    return kInfra;
  }
  auto& [pem, pub] = *pair;
  const std::string& path = o.generate_key_out;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    const int e = errno;
    OPENSSL_cleanse(pem.data(), pem.size());
    std::cerr << "gatehouse sign: cannot create " << path << ": " << std::strerror(e)
              << (e == EEXIST ? " (a key is never overwritten: choose another file, or remove this one first)" : "")
              << "\n";
    return kBadInput;
  }
  size_t done = 0;
  bool ok = ::fchmod(fd.get(), 0600) == 0;  // whatever the umask made of it
  while (ok && done < pem.size()) {
    const ssize_t n = ::write(fd.get(), pem.data() + done, pem.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd.get()) == 0;
  const int e = errno;
  OPENSSL_cleanse(pem.data(), pem.size());
  if (!ok) {
    ::unlink(path.c_str());  // half a key is no key
    std::cerr << "gatehouse sign: cannot write " << path << ": " << std::strerror(e) << "\n";
    return kInfra;
  }
  std::cout << "ed25519: " << pub << "\n";
  std::cerr << "wrote the private key " << path << " (mode 0600). Trust it in the policy with:\n"
            << "signatures:\n  trusted_keys:\n    - name: NAME\n      ed25519: " << pub << "\n";
  return kPassed;
}

int sign(const SignOptions& o, const std::string& config) {
  auto pem = read_file(o.key_file, signature::kMaxPrivateKeyFileBytes, "private key", true);
  if (!pem) {
    std::cerr << "gatehouse sign: " << pem.error().message << "\n";
    return kBadInput;
  }
  auto sig = signature::sign_job(*pem, o.key_name, o.job, config, o.meta);
  OPENSSL_cleanse(pem->data(), pem->size());
  if (!sig) {
    std::cerr << "gatehouse sign: " << o.key_file << ": " << sig.error().message << "\n";
    return kBadInput;
  }
  std::cout << signature::encode_signature_json(*sig) << "\n";
  return kPassed;
}

int verify(const SignOptions& o, const std::string& config) {
  if (o.policy_file.empty()) {
    std::cerr << "gatehouse sign: --verify needs --policy FILE (the trusted keys)\n";
    return kBadInput;
  }
  auto parsed = policy::parse_policy_file(o.policy_file);
  if (!parsed.policy) {
    std::cerr << parsed.diagnostics.render();
    return kBadInput;
  }
  auto text = read_file(o.verify_file, signature::kMaxSignatureJsonBytes, "signature file", false);
  if (!text) {
    std::cerr << "gatehouse sign: " << text.error().message << "\n";
    return kBadInput;
  }
  auto sig = signature::decode_signature_json(*text);
  if (!sig) {
    std::cerr << "gatehouse sign: " << o.verify_file << ": " << sig.error().message << "\n";
    return kBadInput;
  }
  auto verdict = signature::verify_job(parsed.policy->signatures, o.job, config, o.meta, *sig);
  if (!verdict) {
    std::cerr << "refused: " << verdict.error().message << "\n";
    return kRefused;
  }
  if (verdict->key_name.empty())
    std::cout << "admitted: the job is unsigned, and the policy does not require a signature\n";
  else
    std::cout << "verified: signed by trusted key `" << verdict->key_name << "`\n";
  return kPassed;
}

}  // namespace

int sign_command(const SignOptions& o) {
  const int modes = !o.key_file.empty() + !o.generate_key_out.empty() + !o.verify_file.empty();
  if (modes != 1) {
    std::cerr << "gatehouse sign: give exactly one of --key PRIVATE.pem (sign), --generate-key OUT.pem, "
                 "--verify SIGFILE\n";
    return kBadInput;
  }
  if (!o.generate_key_out.empty()) {
    if (!o.config_file.empty() || !o.job.empty()) {
      std::cerr << "gatehouse sign: --generate-key takes no job\n";
      return kBadInput;
    }
    return generate(o);
  }
  if (const std::string why = job_problem(o); !why.empty()) {
    std::cerr << "gatehouse sign: " << why << "\n";
    return kBadInput;
  }
  auto config = read_file(o.config_file, protocol::kMaxJobConfigBytes, "job config", false);
  if (!config) {
    std::cerr << "gatehouse sign: " << config.error().message << "\n";
    return kBadInput;
  }
  return o.key_file.empty() ? verify(o, *config) : sign(o, *config);
}

}  // namespace gh::cli
