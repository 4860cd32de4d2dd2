// libFuzzer target: everything the Docker proxy reads from a job, on
// arbitrary bytes: the HTTP request reader (head and body), the target
// parser, strict JSON and the container/exec/network/volume checks, and the
// Dockerfile parser. None may crash, hang or leak; every refusal must name
// its rule and say why; and a JSON body strict parsing accepts must parse
// again, unchanged, from its canonical form (what the daemon gets is what
// was checked).
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "docker/build_rules.hpp"
#include "docker/container_rules.hpp"
#include "docker/http_message.hpp"
#include "docker/strict_json.hpp"
#include "docker/target.hpp"

namespace {

using namespace gh::docker;

void named(const Refusal& r) {
  if (r.rule.empty() || r.message.empty() || r.status < 400 || r.status > 599) abort();
}

template <typename T>
void check(const Checked<T>& c) {
  if (!c.ok()) named(c.error());
}

// Owns every other name, so both branches of each ownership check run.
struct Alternating final : Ownership {
  bool flip = false;
  bool next() { return flip = !flip; }
  bool container_owned(const std::string&) override { return next(); }
  bool network_owned(const std::string&) override { return next(); }
  bool volume_owned(const std::string&) override { return next(); }
  bool image_usable(const std::string&) override { return next(); }
};

void read_request(std::string_view in) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return;
  size_t off = 0;
  while (off < in.size()) {
    ssize_t n = write(sv[1], in.data() + off, in.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  shutdown(sv[1], SHUT_WR);
  RequestLimits limits;
  limits.head_timeout = std::chrono::milliseconds(200);
  limits.body_idle_timeout = std::chrono::milliseconds(200);
  RequestReader reader(sv[0], limits);
  auto head = reader.head();
  check(head);
  if (head.ok() && head->has_body()) check(reader.body());
  close(sv[0]);
  close(sv[1]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  read_request(in);
  auto target = parse_target(in);
  check(target);
  if (target.ok()) check(parse_target(target->upstream_target()));  // what goes upstream parses again

  auto j = parse_strict(in);
  check(j);
  if (j.ok()) {
    const std::string canon = canonical(*j);
    auto again = parse_strict(canon);
    if (!again.ok() || *again != *j) abort();
    if (j->is_object()) {
      JobRules rules;
      rules.job_id = "run-fuzz";
      rules.bind_roots = {{"/home/circleci/project", "/var/lib/gatehouse/work/1/workspace"}};
      rules.ports = {{8080, 8090}};
      rules.images = {"docker.io/library/*"};
      rules.memory_bytes = 1ull << 30;
      rules.pids = 512;
      rules.cpus = 2;
      Alternating own;
      check(check_container_create(*j, rules, own));
      check(check_container_update(*j, rules));
      check(check_exec_create(*j));
      check(check_network_create(*j, rules));
      check(check_volume_create(*j, rules));
    }
  }
  check(dockerfile_images(in));
  return 0;
}
