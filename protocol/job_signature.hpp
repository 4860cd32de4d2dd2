// Job authenticity: Ed25519 signatures over a job and its metadata
// (docs/protocol.md, Signatures; docs/policy.md, signatures).
//
// The control plane's side signs (`gatehouse sign`); the agent verifies
// against the policy's trusted keys before anything of the job runs. A
// verdict is all or nothing: a signature that is present but does not
// verify is refused even when the policy does not require signatures, so a
// tampered job is never downgraded to "unsigned" and run anyway.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "protocol/protocol.hpp"
#include "common/result.hpp"
#include "policy/policy.hpp"

namespace gh::signature {

inline constexpr size_t kSignatureBytes = 64;
inline constexpr size_t kMaxPrivateKeyFileBytes = 16 << 10;
inline constexpr size_t kMaxSignatureJsonBytes = 4 << 10;

// Verdict for a job about to be admitted. Refused jobs never run.
struct Verified {
  std::string key_name;  // the trusted key that signed; "" = unsigned and allowed
};

// The error text of a refusal says why, in words for the operator; it never
// repeats more of the hostile signature than a valid key name.
Result<Verified> verify_job(const policy::Signatures& trust, const std::string& job_name,
                            const std::string& job_config, const protocol::JobMetaWire& meta,
                            const std::optional<protocol::Signature>& sig);

// Signs with an Ed25519 private key in PEM (PKCS#8, as generate_key writes
// it). key_name goes into the signature as is ("" for none; otherwise it
// must be a valid key name).
Result<protocol::Signature> sign_job(const std::string& private_key_pem, const std::string& key_name,
                                     const std::string& job_name, const std::string& job_config,
                                     const protocol::JobMetaWire& meta);

// A new key pair: the private key as unencrypted PKCS#8 PEM, and the public
// key as the base64 the policy's `ed25519:` takes.
Result<std::pair<std::string /*private PEM*/, std::string /*public base64*/>> generate_key();

// The bytes a signature covers: protocol::signed_bytes ("gatehouse-job-v1\n"
// and the canonical JSON of the job and its metadata), refused when a string
// is not valid UTF-8 (such a job cannot cross the JSON wire either).
Result<std::string> signed_message(const std::string& job_name, const std::string& job_config,
                                 const protocol::JobMetaWire& meta);

// The `signature` value of a task, alone: `{"key": "NAME", "ed25519": "..."}`,
// or `null` for an unsigned job (nullopt). Strict: an object with exactly
// these keys, strings, at most kMaxSignatureJsonBytes.
Result<std::optional<protocol::Signature>> decode_signature_json(const std::string& text);
std::string encode_signature_json(const protocol::Signature& sig);

}  // namespace gh::signature
