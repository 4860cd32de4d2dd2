// `gatehouse sign`: the control plane's side of job signatures, and a
// check an operator can run by hand (docs/policy.md, signatures).
//
//   sign --key PRIVATE.pem [--key-name NAME] --job NAME [meta flags] CONFIG.yml
//        prints the task's `signature` object on stdout; exit 0, 2 on bad input
//   sign --generate-key OUT.pem
//        writes a new private key (mode 0600, never over an existing file)
//        and prints its public key as the policy's `ed25519:` line; exit 0, 2
//   sign --verify SIGFILE --policy POLICY --job NAME [meta flags] CONFIG.yml
//        the agent's verdict on that job: exit 0 admitted, 3 refused, 2 bad input
#pragma once

#include <string>

#include "protocol/protocol.hpp"

namespace gh::cli {

struct SignOptions {
  std::string config_file;       // CONFIG.yml: the job's config, signed byte for byte
  std::string job;               // the job's name in it
  protocol::JobMetaWire meta;    // project, branch, tag, trigger, revision
  std::string key_file;          // --key: the Ed25519 private key (PEM)
  std::string key_name;          // --key-name: the name the policy trusts it under
  std::string generate_key_out;  // --generate-key OUT.pem
  std::string verify_file;       // --verify SIGFILE: a signature object, or `null`
  std::string policy_file;       // --policy, with --verify
};

int sign_command(const SignOptions& opts);

}  // namespace gh::cli
