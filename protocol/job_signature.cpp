// Job signatures with OpenSSL's Ed25519 (EVP_DigestSign/Verify, no digest:
// Ed25519 hashes the message itself). See common/job_signature.hpp.
//
// Every OpenSSL answer other than "verified" counts as "not verified", and
// the error queue is cleared after each call so a stale error cannot be
// mistaken for a later operation's.
#include "protocol/job_signature.hpp"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

namespace gh::signature {

namespace {

using Bytes = std::vector<unsigned char>;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using Bio = std::unique_ptr<BIO, BioFree>;

std::string base64(const unsigned char* data, size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(len > 0 ? static_cast<size_t>(len) : 0);
  return out;
}

// Standard base64 of exactly n bytes and nothing else: decoding and encoding
// again must give the text back (no whitespace, no URL-safe alphabet, no
// stray bits in the padding).
std::optional<Bytes> decode_exact(const std::string& b64, size_t n) {
  const size_t want_chars = 4 * ((n + 2) / 3);
  if (b64.size() != want_chars) return std::nullopt;
  Bytes raw(want_chars / 4 * 3);
  const int got = EVP_DecodeBlock(raw.data(), reinterpret_cast<const unsigned char*>(b64.data()),
                                  static_cast<int>(b64.size()));
  if (got != static_cast<int>(raw.size())) return std::nullopt;
  raw.resize(n);  // EVP_DecodeBlock counts padding as zero bytes
  if (base64(raw.data(), raw.size()) != b64) return std::nullopt;
  return raw;
}

bool verifies(const std::array<unsigned char, 32>& public_key, const Bytes& sig, const std::string& msg) {
  Pkey key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(), public_key.size()));
  MdCtx ctx(EVP_MD_CTX_new());
  bool ok = key && ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) == 1 &&
            EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), reinterpret_cast<const unsigned char*>(msg.data()),
                             msg.size()) == 1;
  ERR_clear_error();
  return ok;
}

// A PEM that asks for a passphrase is refused rather than prompting on the
// terminal: keys for `gatehouse sign` are unencrypted files of mode 0600.
int no_passphrase(char*, int, int, void*) { return 0; }

}  // namespace

Result<std::string> signed_message(const std::string& job_name, const std::string& job_config,
                                   const protocol::JobMetaWire& meta) {
  // protocol::signed_bytes replaces invalid UTF-8 (U+FFFD), so two different
  // byte strings could sign alike: such jobs are refused here instead.
  for (const std::string* s : {&job_name, &job_config, &meta.project, &meta.branch, &meta.tag, &meta.trigger,
                               &meta.revision}) {
    try {
      (void)nlohmann::json(*s).dump();
    } catch (const nlohmann::json::exception&) {
      return err("the job's config or metadata is not valid UTF-8, so it cannot be signed or checked");
    }
  }
  return protocol::signed_bytes(job_name, job_config, meta);
}

Result<Verified> verify_job(const policy::Signatures& trust, const std::string& job_name,
                            const std::string& job_config, const protocol::JobMetaWire& meta,
                            const std::optional<protocol::Signature>& sig) {
  if (!sig) {
    if (trust.required) return err("the job is unsigned, and the policy requires a signature (signatures.required: true)");
    return Verified{""};
  }
  const auto raw = decode_exact(sig->ed25519, kSignatureBytes);
  if (!raw) return err("the job's signature is malformed: `ed25519` must be the base64 of 64 bytes");
  if (!sig->key.empty() && !policy::valid_key_name(sig->key))
    return err("the job's signature is malformed: its `key` is not a valid key name");
  auto msg = signed_message(job_name, job_config, meta);
  if (!msg) return msg.error();
  const std::string changed = "the job or its metadata changed after signing, or ";
  if (!sig->key.empty()) {
    const policy::TrustedKey* key = trust.find(sig->key);
    if (!key)
      return err("the job is signed by key `" + sig->key + "`, which is not in the policy's signatures.trusted_keys");
    if (!verifies(key->public_key, *raw, *msg))
      return err("the job's signature does not verify with trusted key `" + key->name + "`: " + changed +
                 "another key signed it");
    return Verified{key->name};
  }
  if (trust.trusted_keys.empty())
    return err("the job is signed, but the policy trusts no key (signatures.trusted_keys is empty)");
  // The policy gives each public key once, so at most one can verify.
  for (const auto& key : trust.trusted_keys)
    if (verifies(key.public_key, *raw, *msg)) return Verified{key.name};
  return err("the job's signature verifies with none of the policy's " + std::to_string(trust.trusted_keys.size()) +
             " trusted keys: " + changed + "an untrusted key signed it");
}

Result<protocol::Signature> sign_job(const std::string& private_key_pem, const std::string& key_name,
                                     const std::string& job_name, const std::string& job_config,
                                     const protocol::JobMetaWire& meta) {
  if (!key_name.empty() && !policy::valid_key_name(key_name))
    return err("key name `" + key_name + "` is not valid: 1 to 64 of a-z, 0-9, ., _ and -, starting with a letter or digit");
  auto msg = signed_message(job_name, job_config, meta);
  if (!msg) return msg.error();
  if (private_key_pem.size() > kMaxPrivateKeyFileBytes) return err("the private key file is too large to be a key");
  Bio bio(BIO_new_mem_buf(private_key_pem.data(), static_cast<int>(private_key_pem.size())));
  Pkey key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr) : nullptr);
  ERR_clear_error();
  if (!key)
    return err("the private key is not an unencrypted PEM private key (make one with `gatehouse sign --generate-key`)");
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519)
    return err("the private key is not an Ed25519 key (make one with `gatehouse sign --generate-key`)");
  MdCtx ctx(EVP_MD_CTX_new());
  unsigned char sig[kSignatureBytes];
  size_t sig_len = sizeof sig;
  const bool ok = ctx && EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) == 1 &&
                  EVP_DigestSign(ctx.get(), sig, &sig_len, reinterpret_cast<const unsigned char*>(msg->data()),
                                 msg->size()) == 1 &&
                  sig_len == kSignatureBytes;
  ERR_clear_error();
  if (!ok) return err("OpenSSL could not sign the job (Ed25519)");
  return protocol::Signature{key_name, base64(sig, sig_len)};
}

Result<std::pair<std::string, std::string>> generate_key() {
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  Bio bio(BIO_new(BIO_s_mem()));
  unsigned char pub[32];
  size_t pub_len = sizeof pub;
  const bool ok = key && bio &&
                  PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1 &&
                  EVP_PKEY_get_raw_public_key(key.get(), pub, &pub_len) == 1 && pub_len == sizeof pub;
  ERR_clear_error();
  if (!ok) return err("OpenSSL could not generate an Ed25519 key");
  char* pem = nullptr;
  const long pem_len = BIO_get_mem_data(bio.get(), &pem);
  if (pem_len <= 0 || !pem) return err("OpenSSL could not write the Ed25519 key as PEM");
  std::string private_pem(pem, static_cast<size_t>(pem_len));
  OPENSSL_cleanse(pem, static_cast<size_t>(pem_len));  // the copy above is the only one left
  return std::make_pair(std::move(private_pem), base64(pub, sizeof pub));
}

Result<std::optional<protocol::Signature>> decode_signature_json(const std::string& text) {
  if (text.size() > kMaxSignatureJsonBytes)
    return err("the signature is " + std::to_string(text.size()) + " bytes, more than " +
               std::to_string(kMaxSignatureJsonBytes));
  const auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) return err("the signature is not JSON");
  if (doc.is_null()) return std::optional<protocol::Signature>{};
  if (!doc.is_object()) return err("the signature must be a JSON object {\"key\": NAME, \"ed25519\": BASE64} or null");
  protocol::Signature sig;
  bool has_sig = false;
  for (const auto& [k, v] : doc.items()) {
    if (k != "key" && k != "ed25519")
      return err("the signature has an unknown key (only `key` and `ed25519` are allowed)");
    if (!v.is_string()) return err("the signature's `" + k + "` must be a string");
    if (k == "key") {
      sig.key = v.get<std::string>();
    } else {
      sig.ed25519 = v.get<std::string>();
      has_sig = true;
    }
  }
  if (!has_sig) return err("the signature has no `ed25519`");
  return std::optional<protocol::Signature>{std::move(sig)};
}

std::string encode_signature_json(const protocol::Signature& sig) {
  // ordered_json: the key name first, as people read it.
  nlohmann::ordered_json j = {{"key", sig.key}, {"ed25519", sig.ed25519}};
  return j.dump();
}

}  // namespace gh::signature

namespace gh::protocol {

// Lives with the signatures, its only reader: the broker verifies them
// without linking the rest of the control-plane codec.
std::string signed_bytes(const std::string& job_name, const std::string& job_config, const JobMetaWire& meta) {
  const nlohmann::json doc = {{"job", {{"config", job_config}, {"name", job_name}}},
                              {"meta",
                               {{"branch", meta.branch},
                                {"project", meta.project},
                                {"revision", meta.revision},
                                {"tag", meta.tag},
                                {"trigger", meta.trigger}}}};
  return "gatehouse-job-v1\n" + doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace gh::protocol
