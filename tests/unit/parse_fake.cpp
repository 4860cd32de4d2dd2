// A stand-in for gatehouse-parse (tests/unit/test_parse_client.cpp): it
// reads the whole request, then misbehaves as the request's bytes ask, so
// the broker's side can be shown each failure. The marker words are looked
// for anywhere in the request; the well-formed wrong answers use the codec.
#include <signal.h>
#include <unistd.h>

#include <string>

#include "ipc/parse_messages.hpp"

int main() {
  std::string in;
  char buf[65536];
  for (ssize_t n; (n = read(0, buf, sizeof buf)) > 0;) in.append(buf, static_cast<size_t>(n));
  auto has = [&](const char* word) { return in.find(word) != std::string::npos; };
  if (has("crash-me")) {
    signal(SIGSEGV, SIG_DFL);  // a sanitizer's handler would turn it into exit status 1
    raise(SIGSEGV);
  }
  if (has("hang-me"))
    for (;;) pause();
  if (has("exit-me")) _exit(3);
  if (has("garbage-me")) {
    (void)!write(1, "not a frame at all", 18);
    _exit(0);
  }
  if (has("oversize-me")) {
    // A result header declaring 64 MiB, more than the broker takes.
    const unsigned char h[8] = {0x52, 0x50, 0x48, 0x47, 0, 0, 0, 4};
    (void)!write(1, h, sizeof h);
    _exit(0);
  }
  if (has("wrong-kind-me")) {  // well-formed, but settings where a job was asked for
    gh::ipc::ParseResult r;
    r.settings = gh::ipc::BrokerSettings{"r1", "/w", true, "/u", "/o", "/s", "/p", "", "", ""};
    const std::string f = gh::ipc::frame_result(r);
    (void)!write(1, f.data(), f.size());
    _exit(0);
  }
  if (has("bad-digest-me")) {  // a policy whose digest is not its own
    gh::ipc::ParseResult r;
    r.policy = gh::ipc::ParsedPolicy{gh::policy::builtin_policy(), std::string(64, 'a'), {std::string(8, 'x')}};
    const std::string f = gh::ipc::frame_result(r);
    (void)!write(1, f.data(), f.size());
    _exit(0);
  }
  _exit(9);  // nothing asked: an unexplained failure
}
