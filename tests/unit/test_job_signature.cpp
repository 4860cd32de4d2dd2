// Job signatures (common/job_signature.hpp) and the policy's `signatures`
// section: what is signed, every refusal with its exact words, and how the
// operator tools (check, canonical form, diff, explain) show trusted keys.
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <string>
#include <vector>

#include "protocol/job_signature.hpp"
#include "policy/policy.hpp"

using gh::policy::Policy;
using gh::policy::Signatures;
using gh::policy::TrustedKey;
using gh::protocol::JobMetaWire;
using gh::protocol::Signature;
namespace sig = gh::signature;

namespace {

struct KeyPair {
  std::string pem, pub;
};

KeyPair make_key() {
  auto k = sig::generate_key();
  REQUIRE(k);
  return {k->first, k->second};
}

TrustedKey trusted(const std::string& name, const std::string& pub_b64) {
  TrustedKey k;
  k.name = name;
  std::vector<unsigned char> raw(33);
  REQUIRE(EVP_DecodeBlock(raw.data(), reinterpret_cast<const unsigned char*>(pub_b64.data()),
                          static_cast<int>(pub_b64.size())) == 33);
  std::copy(raw.begin(), raw.begin() + 32, k.public_key.begin());
  REQUIRE(gh::policy::public_key_base64(k) == pub_b64);
  return k;
}

const std::string kConfig = "version: 2.1\njobs:\n  build:\n    machine: true\n    steps: [checkout]\n";
const JobMetaWire kMeta{"acme/app", "main", "v1.2", "tag", "0123abcd"};

std::string refusal(const gh::Result<sig::Verified>& r) {
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

Signature sign(const KeyPair& k, const std::string& name, const std::string& config = kConfig,
               const JobMetaWire& meta = kMeta, const std::string& job = "build") {
  auto s = sig::sign_job(k.pem, name, job, config, meta);
  REQUIRE(s);
  CHECK(s->key == name);
  return *s;
}

gh::policy::PolicyOutcome parse(const std::string& text) { return gh::policy::parse_policy_text("policy.yaml", text); }

bool has(const gh::policy::PolicyOutcome& o, int line, int col, const std::string& what,
         gh::Severity sev = gh::Severity::Error) {
  for (const auto& d : o.diagnostics.all())
    if (d.severity == sev && d.mark.line == line && d.mark.column == col && d.message.find(what) != std::string::npos)
      return true;
  return false;
}

const std::string kKeyA = "ei0SfS8Ltum9Zsh7jT3FiGugoMwqr7hry0V6MOdNbFg=";
const std::string kKeyB = "nD19niAShisRbXWSpuFoYTZ3KqsINLKPsa+xKexf0KU=";

}  // namespace

TEST_CASE("signed bytes: the domain line, then canonical JSON with sorted keys and every meta field") {
  auto m = sig::signed_message("build", "a: \"b\"\n\u00e9", {"acme/app", "", "", "push", ""});
  REQUIRE(m);
  CHECK(*m == "gatehouse-job-v1\n{\"job\":{\"config\":\"a: \\\"b\\\"\\n\u00e9\",\"name\":\"build\"},"
              "\"meta\":{\"branch\":\"\",\"project\":\"acme/app\",\"revision\":\"\",\"tag\":\"\",\"trigger\":\"push\"}}");
  CHECK(*m == gh::protocol::signed_bytes("build", "a: \"b\"\n\u00e9", {"acme/app", "", "", "push", ""}));
  // Invalid UTF-8 would be replaced by U+FFFD, making two jobs sign alike: refused.
  for (const std::string bad : {"\xff", "a\xc3", "\xed\xa0\x80"}) {
    CHECK_FALSE(sig::signed_message("build", bad, kMeta));
    CHECK_FALSE(sig::signed_message("build", "ok", {"acme/app", bad, "", "", ""}));
    CHECK(sig::sign_job(make_key().pem, "", "build", bad, kMeta).error().message ==
          "the job's config or metadata is not valid UTF-8, so it cannot be signed or checked");
  }
}

TEST_CASE("a signature is Ed25519 over exactly the signed bytes (checked with OpenSSL directly)") {
  const KeyPair k = make_key();
  CHECK(k.pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0) == 0);
  CHECK(k.pub.size() == 44);
  CHECK(make_key().pub != k.pub);
  const Signature s = sign(k, "release-key");
  CHECK(s.ed25519.size() == 88);
  // Ed25519 is deterministic: the same job signs the same.
  CHECK(sign(k, "release-key").ed25519 == s.ed25519);

  std::string raw_sig(66, '\0');
  REQUIRE(EVP_DecodeBlock(reinterpret_cast<unsigned char*>(raw_sig.data()),
                          reinterpret_cast<const unsigned char*>(s.ed25519.data()), 88) == 66);
  const TrustedKey t = trusted("release-key", k.pub);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, t.public_key.data(), 32), EVP_PKEY_free);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  REQUIRE(EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) == 1);
  const std::string msg = gh::protocol::signed_bytes("build", kConfig, kMeta);
  CHECK(EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(raw_sig.data()), 64,
                         reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) == 1);
}

TEST_CASE("verify: a good signature names its trusted key; unsigned jobs only when not required") {
  const KeyPair a = make_key(), b = make_key();
  Signatures trust;
  trust.trusted_keys = {trusted("release-key", a.pub), trusted("ops", b.pub)};

  auto v = sig::verify_job(trust, "build", kConfig, kMeta, sign(a, "release-key"));
  REQUIRE(v);
  CHECK(v->key_name == "release-key");
  // No key name: every trusted key is tried, and the one that verifies names the signer.
  v = sig::verify_job(trust, "build", kConfig, kMeta, sign(b, ""));
  REQUIRE(v);
  CHECK(v->key_name == "ops");

  v = sig::verify_job(trust, "build", kConfig, kMeta, std::nullopt);
  REQUIRE(v);
  CHECK(v->key_name.empty());
  trust.required = true;
  CHECK(refusal(sig::verify_job(trust, "build", kConfig, kMeta, std::nullopt)) ==
        "the job is unsigned, and the policy requires a signature (signatures.required: true)");
  CHECK(sig::verify_job(trust, "build", kConfig, kMeta, sign(a, "release-key")));
}

TEST_CASE("verify: anything changed after signing is refused, required or not") {
  const KeyPair a = make_key(), other = make_key();
  for (bool required : {false, true}) {
    CAPTURE(required);
    Signatures trust;
    trust.required = required;
    trust.trusted_keys = {trusted("release-key", a.pub), trusted("ops", make_key().pub)};
    const Signature s = sign(a, "release-key");
    const std::string named_fail =
        "the job's signature does not verify with trusted key `release-key`: the job or its metadata changed "
        "after signing, or another key signed it";
    CHECK(refusal(sig::verify_job(trust, "build", kConfig + " ", kMeta, s)) == named_fail);
    CHECK(refusal(sig::verify_job(trust, "deploy", kConfig, kMeta, s)) == named_fail);
    // Each meta field is covered, and "" is not "absent but anything".
    for (std::string JobMetaWire::*field : {&JobMetaWire::project, &JobMetaWire::branch, &JobMetaWire::tag,
                                            &JobMetaWire::trigger, &JobMetaWire::revision}) {
      for (const std::string changed : {"", "x"}) {
        JobMetaWire m = kMeta;
        m.*field = changed;
        CHECK(refusal(sig::verify_job(trust, "build", kConfig, m, s)) == named_fail);
      }
    }
    // A meta value moved to another field changes the bytes too.
    CHECK(refusal(sig::verify_job(trust, "build", kConfig, {"main", "acme/app", "v1.2", "tag", "0123abcd"}, s)) ==
          named_fail);
    // Signed by another key under a trusted name.
    CHECK(refusal(sig::verify_job(trust, "build", kConfig, kMeta, sign(other, "release-key"))) == named_fail);
    // A trusted key signed, but the signature claims the other trusted name.
    CHECK(refusal(sig::verify_job(trust, "build", kConfig, kMeta, sign(a, "ops"))) ==
          "the job's signature does not verify with trusted key `ops`: the job or its metadata changed after "
          "signing, or another key signed it");
    // No name, and no trusted key verifies.
    CHECK(refusal(sig::verify_job(trust, "build", kConfig, kMeta, sign(other, ""))) ==
          "the job's signature verifies with none of the policy's 2 trusted keys: the job or its metadata changed "
          "after signing, or an untrusted key signed it");
    CHECK(refusal(sig::verify_job(trust, "build", kConfig, kMeta, sign(other, "stranger"))) ==
          "the job is signed by key `stranger`, which is not in the policy's signatures.trusted_keys");
    Signatures none;
    none.required = required;
    CHECK(refusal(sig::verify_job(none, "build", kConfig, kMeta, sign(a, ""))) ==
          "the job is signed, but the policy trusts no key (signatures.trusted_keys is empty)");
  }
}

TEST_CASE("verify: a malformed signature is refused before any key is tried") {
  const KeyPair a = make_key();
  Signatures trust;
  trust.trusted_keys = {trusted("release-key", a.pub)};
  const Signature good = sign(a, "release-key");
  const std::string malformed = "the job's signature is malformed: `ed25519` must be the base64 of 64 bytes";
  const std::vector<std::string> bad = {
      "",
      good.ed25519.substr(0, 84),                   // 63 bytes
      good.ed25519.substr(0, 86) + "AAAA",          // 65 bytes (88 chars, no padding)
      good.ed25519 + "AAAA",                        // 67 bytes
      " " + good.ed25519.substr(1),                 // whitespace
      good.ed25519.substr(0, 85) + "-==",           // URL-safe alphabet
      good.ed25519.substr(0, 85) + "B==",           // stray bits in the padding
      std::string(88, '='),
  };
  for (const auto& b : bad) {
    CAPTURE(b);
    CHECK(refusal(sig::verify_job(trust, "build", kConfig, kMeta, Signature{"release-key", b})) == malformed);
  }
  CHECK(refusal(sig::verify_job(trust, "build", kConfig, kMeta, Signature{"Release Key\x1b[2J", good.ed25519})) ==
        "the job's signature is malformed: its `key` is not a valid key name");
  CHECK(sig::verify_job(trust, "build", kConfig, kMeta, good));
}

TEST_CASE("sign: refuses what is not an unencrypted Ed25519 private key, and bad key names") {
  const KeyPair a = make_key();
  CHECK(sig::sign_job("not a key", "", "build", kConfig, kMeta).error().message ==
        "the private key is not an unencrypted PEM private key (make one with `gatehouse sign --generate-key`)");
  CHECK(sig::sign_job(a.pem, "Release Key", "build", kConfig, kMeta).error().message.find(
            "key name `Release Key` is not valid") == 0);
  // An EC key is a private key, but not Ed25519.
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> ec(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"),
                                                         EVP_PKEY_free);
  REQUIRE(ec);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  REQUIRE(PEM_write_bio_PrivateKey(bio.get(), ec.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  CHECK(sig::sign_job(std::string(data, static_cast<size_t>(n)), "", "build", kConfig, kMeta).error().message ==
        "the private key is not an Ed25519 key (make one with `gatehouse sign --generate-key`)");
  // An encrypted key is refused without asking for a passphrase.
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), EVP_PKEY_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> enc(BIO_new(BIO_s_mem()), BIO_free);
  REQUIRE(PEM_write_bio_PKCS8PrivateKey(enc.get(), ed.get(), EVP_aes_256_cbc(), nullptr, 0, nullptr,
                                        const_cast<char*>("secret")) == 1);
  const long m = BIO_get_mem_data(enc.get(), &data);
  const std::string encrypted(data, static_cast<size_t>(m));
  REQUIRE(encrypted.find("ENCRYPTED PRIVATE KEY") != std::string::npos);
  CHECK_FALSE(sig::sign_job(encrypted, "", "build", kConfig, kMeta));
}

TEST_CASE("signature JSON: the task's `signature` value alone, strictly") {
  const Signature s{"release-key", std::string(86, 'A') + "=="};
  const std::string text = sig::encode_signature_json(s);
  CHECK(text == "{\"key\":\"release-key\",\"ed25519\":\"" + s.ed25519 + "\"}");
  auto d = sig::decode_signature_json(text);
  REQUIRE(d);
  REQUIRE(d->has_value());
  CHECK((*d)->key == "release-key");
  CHECK((*d)->ed25519 == s.ed25519);
  d = sig::decode_signature_json(" null\n");
  REQUIRE(d);
  CHECK_FALSE(d->has_value());
  d = sig::decode_signature_json("{\"ed25519\": \"AA==\"}");
  REQUIRE(d);
  CHECK((*d)->key.empty());
  CHECK(sig::decode_signature_json("{\"key\": \"k\"}").error().message == "the signature has no `ed25519`");
  CHECK(sig::decode_signature_json("{\"key\": 1, \"ed25519\": \"\"}").error().message ==
        "the signature's `key` must be a string");
  CHECK(sig::decode_signature_json("{\"ed25519\": \"\", \"alg\": \"none\"}").error().message ==
        "the signature has an unknown key (only `key` and `ed25519` are allowed)");
  CHECK(sig::decode_signature_json("[]").error().message ==
        "the signature must be a JSON object {\"key\": NAME, \"ed25519\": BASE64} or null");
  CHECK(sig::decode_signature_json("{").error().message == "the signature is not JSON");
  CHECK(sig::decode_signature_json(std::string(5000, ' ')).error().message == "the signature is 5000 bytes, more than 4096");
}

TEST_CASE("policy: the signatures section is parsed and every mistake is reported at its place") {
  auto ok = parse("version: 1\nsignatures:\n  required: true\n  trusted_keys:\n    - name: release-key\n      ed25519: " +
                  kKeyA + "\n    - {name: ops.b_2, ed25519: \"" + kKeyB +
                  "\"}\nprofiles: {a: {}, b: {}}\nrules:\n  - {match: {signed_by: [release-key, ops.b_2]}, profile: "
                  "a}\n  - profile: b\n");
  INFO(ok.diagnostics.render());
  REQUIRE(ok.policy);
  const auto& sg = ok.policy->signatures;
  CHECK(sg.required);
  REQUIRE(sg.trusted_keys.size() == 2);
  CHECK(sg.trusted_keys[1].name == "ops.b_2");
  CHECK(gh::policy::public_key_base64(sg.trusted_keys[0]) == kKeyA);
  CHECK(sg.trusted_keys[1].mark.line == 7);
  // The default: not required, no keys.
  auto plain = parse("version: 1\nprofiles: {default: {}}\n");
  REQUIRE(plain.policy);
  CHECK_FALSE(plain.policy->signatures.required);
  CHECK(plain.policy->signatures.trusted_keys.empty());

  auto refused = [](const std::string& sigs, int line, int col, const std::string& what,
                    const std::string& rules = "") {
    auto o = parse("version: 1\nsignatures:\n" + sigs + "profiles: {a: {}}\nrules:\n" + rules + "  - profile: a\n");
    CAPTURE(sigs);
    INFO(o.diagnostics.render());
    CHECK_FALSE(o.policy);
    CHECK(has(o, line, col, what));
  };
  const std::string key_a = "  trusted_keys:\n    - {name: release-key, ed25519: " + kKeyA + "}\n";
  refused("  required: maybe\n", 3, 13, "`required`");
  refused("  requred: true\n", 3, 3, "unknown key `requred` in `signatures`");
  refused("  trusted_keys:\n    - {name: k, ed25519: " + kKeyA.substr(0, 43) + "}\n", 4, 26,
          "must be the base64 of a 32-byte Ed25519 public key");
  refused("  trusted_keys:\n    - {name: k, ed25519: \"" + kKeyA.substr(0, 43) + "\\n\"}\n", 4, 26, "control character");
  refused("  trusted_keys:\n    - {name: k, ed25519: " + kKeyA.substr(0, 42) + "Z=}\n", 4, 26, "must be");  // stray bits
  refused("  trusted_keys:\n    - {name: k, ed25519: " + kKeyA + "A}\n", 4, 26, "must be");
  // Placeholders and other small-order points would let anyone sign.
  for (const std::string weak : {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",   // 0 (order 4)
                                 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIA=",   // its other sign
                                 "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",   // the identity
                                 "7P///////////////////////////////////////38=",   // -1 (order 2)
                                 "JuiVj8KyJ7BFw/SJ8u+Y8NXfrAXTxjM5sTgCiG1T/AU=",   // order 8
                                 "xxdqcD1N2E+6PAt2DRBnDyogU/osOczGTsf9d5KsA3o=",   // order 8
                                 "7v////////////////////////////////////////8="}) {  // p + 1, sign bit set
    refused("  trusted_keys:\n    - {name: k, ed25519: \"" + weak + "\"}\n", 4, 26, "a point of small order");
  }
  refused("  trusted_keys:\n    - {name: Release, ed25519: " + kKeyA + "}\n", 4, 14, "key name `Release` is not valid");
  refused("  trusted_keys:\n    - {name: -k, ed25519: " + kKeyA + "}\n", 4, 14, "is not valid");
  refused("  trusted_keys:\n    - {name: " + std::string(65, 'k') + ", ed25519: " + kKeyA + "}\n", 4, 14, "is not valid");
  refused(key_a + "    - {name: release-key, ed25519: " + kKeyB + "}\n", 5, 14, "trusted key `release-key` is listed twice");
  refused(key_a + "    - {name: other, ed25519: " + kKeyA + "}\n", 5, 30, "this public key is already trusted as `release-key`");
  refused("  trusted_keys:\n    - {ed25519: " + kKeyA + "}\n", 4, 7, "a trusted key needs `name:`");
  refused("  trusted_keys:\n    - {name: k}\n", 4, 7, "a trusted key needs `ed25519:`");
  refused("  trusted_keys:\n    - {name: k, ed25519: " + kKeyA + ", pem: x}\n", 4, 72, "unknown key `pem` in a trusted key");
  refused("  trusted_keys: " + kKeyA + "\n", 3, 17, "`trusted_keys`");
  std::string many = "  trusted_keys:\n";
  for (int i = 0; i < 65; ++i) many += "    - {name: k" + std::to_string(i) + ", ed25519: " + kKeyA + "}\n";
  refused(many, 4, 5, "`trusted_keys` lists 65 keys");
  // A signed_by rule must name a trusted key, wherever the section is written.
  refused(key_a, 7, 39, "signed_by `release-ky` matches no key in signatures.trusted_keys",
          "  - {match: {signed_by: [release-key, release-ky]}, profile: a}\n");
  auto none = parse("version: 1\nprofiles: {a: {}}\nrules:\n  - {match: {signed_by: release-key}, profile: a}\n"
                    "  - profile: a\n");
  CHECK(has(none, 4, 25, "signed_by `release-key` matches no key in signatures.trusted_keys"));
  CHECK(none.diagnostics.render().find("(none is listed)") != std::string::npos);
  auto after = parse("version: 1\nprofiles: {a: {}}\nrules:\n  - {match: {signed_by: release-key}, profile: a}\n"
                     "  - profile: a\nsignatures:\n" + key_a);
  CHECK(after.policy);
  // A key whose value is wrong is still declared: its rules are not reported twice.
  auto once = parse("version: 1\nsignatures:\n  trusted_keys:\n    - {name: release-key, ed25519: nope}\n"
                    "profiles: {a: {}}\nrules:\n  - {match: {signed_by: release-key}, profile: a}\n  - profile: a\n");
  CHECK(once.diagnostics.all().size() == 1);
}

TEST_CASE("policy tools: canonical form, diff, explain and check show the trusted keys") {
  const std::string head = "version: 1\nsignatures:\n  required: true\n  trusted_keys:\n    - {name: release-key, ed25519: " +
                           kKeyA + "}\n";
  auto o = parse(head + "profiles: {default: {}}\n");
  REQUIRE(o.policy);
  const Policy p = *o.policy;
  const std::string c = gh::policy::canonical_yaml(p);
  CHECK(c.find("\nsignatures:\n  required: true\n  trusted_keys:\n    - name: \"release-key\"\n      ed25519: \"" + kKeyA +
               "\"\nprofiles:\n") != std::string::npos);
  auto again = parse(c);
  REQUIRE(again.policy);
  CHECK(gh::policy::canonical_yaml(*again.policy) == c);
  CHECK(gh::policy::policy_digest(*again.policy) == gh::policy::policy_digest(p));

  const std::string e = gh::policy::explain(p);
  CHECK(e.find("Signatures (Ed25519, checked before a job from the control plane runs):\n"
               "  required: true — unsigned jobs are refused\n"
               "  a job that carries a signature is refused unless it verifies against a trusted key\n"
               "  trusted keys (the names `signed_by` rules match):\n"
               "    release-key: ed25519 " + kKeyA + " (line 5)\n") != std::string::npos);
  const std::string d = gh::policy::explain(gh::policy::builtin_policy());
  CHECK(d.find("  required: false (the default) — unsigned jobs are admitted; they match no `signed_by` rule\n") !=
        std::string::npos);
  CHECK(d.find("  trusted keys: none (the default) — every signed job is refused\n") != std::string::npos);

  using Kind = gh::policy::DiffLine::Kind;
  auto lines_of = [](const Policy& a, const Policy& b) {
    std::vector<std::pair<Kind, std::string>> out;
    for (const auto& l : gh::policy::diff(a, b))
      if (l.text.rfind("signatures.", 0) == 0) out.emplace_back(l.kind, l.text);
    return out;
  };
  using Lines = std::vector<std::pair<Kind, std::string>>;
  CHECK(lines_of(p, p) == Lines{{Kind::Unchanged, "signatures.required: true"},
                                {Kind::Unchanged, "signatures.trusted_keys: release-key"}});
  Policy q = p;
  q.signatures.required = false;
  q.signatures.trusted_keys.push_back(trusted("ops", kKeyB));
  CHECK(lines_of(p, q) == Lines{{Kind::Widened, "signatures.required: true -> false"},
                                {Kind::Widened, "signatures.trusted_keys: `ops` added (ed25519 " + kKeyB + ")"}});
  CHECK(lines_of(q, p) == Lines{{Kind::Narrowed, "signatures.required: false -> true"},
                                {Kind::Narrowed, "signatures.trusted_keys: `ops` removed (jobs it signs are refused)"}});
  Policy r = p;
  r.signatures.trusted_keys[0] = trusted("release-key", kKeyB);
  CHECK(lines_of(p, r) == Lines{{Kind::Unchanged, "signatures.required: true"},
                                {Kind::Widened, "signatures.trusted_keys: `release-key` replaced: ed25519 " + kKeyA +
                                                    " -> " + kKeyB + " (another key now signs as `release-key`)"}});

  // check: required with no key to verify against refuses every job.
  auto locked = parse("version: 1\nsignatures: {required: true}\nprofiles: {default: {}}\n");
  REQUIRE(locked.policy);
  gh::policy::lint(*locked.policy, locked.diagnostics);
  CHECK(has(locked, 2, 1, "signatures.required is true but no key is trusted: every job from the control plane is refused",
            gh::Severity::Warning));
  gh::Diagnostics quiet("p");
  gh::policy::lint(p, quiet);
  CHECK(quiet.all().empty());
}
