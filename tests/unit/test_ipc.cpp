// Framing of broker<->worker messages: the broker's first line of defence
// against a compromised worker.
#include <doctest/doctest.h>

#include "ipc/messages.hpp"

using namespace gh::ipc;

TEST_CASE("a framed message round-trips") {
  std::string frame = encode(Type::Output, "abc");
  CHECK(frame.size() == kHeaderBytes + 3);
  auto d = decode(frame, kMaxWorkerMessageBytes);
  REQUIRE(d.message);
  CHECK(d.message->type == Type::Output);
  CHECK(d.message->payload == "abc");
}

TEST_CASE("framing errors are refused before meaning") {
  std::string frame = encode(Type::Hello, "1234");
  SUBCASE("truncated header") {
    auto d = decode(frame.substr(0, 5), kMaxWorkerMessageBytes);
    CHECK_FALSE(d.message);
    CHECK(d.error.find("truncated") != std::string::npos);
  }
  SUBCASE("truncated payload") {
    auto d = decode(frame.substr(0, frame.size() - 1), kMaxWorkerMessageBytes);
    CHECK_FALSE(d.message);
    CHECK(d.error.find("does not match") != std::string::npos);
  }
  SUBCASE("trailing garbage") {
    auto d = decode(frame + "x", kMaxWorkerMessageBytes);
    CHECK_FALSE(d.message);
  }
  SUBCASE("bad magic") {
    std::string bad = frame;
    bad[0] ^= 1;
    CHECK(decode(bad, kMaxWorkerMessageBytes).error == "bad message magic");
  }
  SUBCASE("unknown type") {
    std::string bad = frame;
    bad[4] = 99;
    CHECK(decode(bad, kMaxWorkerMessageBytes).error.find("unknown message type 99") != std::string::npos);
  }
  SUBCASE("oversized") {
    std::string big = encode(Type::Output, std::string(kMaxWorkerMessageBytes, 'x'));
    auto d = decode(big, kMaxWorkerMessageBytes);
    CHECK_FALSE(d.message);
    CHECK(d.error.find("larger than") != std::string::npos);
  }
}

TEST_CASE("each worker message is allowed only in its phase") {
  CHECK(worker_message_allowed(Type::Hello, Phase::AwaitHello));
  CHECK_FALSE(worker_message_allowed(Type::Hello, Phase::Running));
  CHECK_FALSE(worker_message_allowed(Type::Output, Phase::AwaitHello));
  CHECK(worker_message_allowed(Type::Output, Phase::Running));
  CHECK_FALSE(worker_message_allowed(Type::Output, Phase::Done));
  CHECK_FALSE(worker_message_allowed(Type::JobFinished, Phase::Done));
  // Broker-to-worker types are never accepted from the worker.
  for (auto p : {Phase::AwaitHello, Phase::Running, Phase::Done}) {
    CHECK_FALSE(worker_message_allowed(Type::JobSpec, p));
    CHECK_FALSE(worker_message_allowed(Type::Cancel, p));
  }
}

TEST_CASE("the job spec round-trips and rejects every truncation") {
  JobSpec spec;
  spec.scratch_dir = "/tmp/.gatehouse-steps";
  SpecStep s;
  s.name = "build";
  s.command = "make -j2\n";
  s.argv_prefix = {"/bin/bash", "-eo", "pipefail"};
  s.env = {"A=1", "B=two"};
  s.working_directory = "/home/circleci/project";
  s.no_output_timeout_s = 42;
  s.when = 2;
  s.background = true;
  spec.steps = {s, s};
  spec.bash_env = "/tmp/.bash_env-run-0123456789abcdef";
  std::string enc = encode_job_spec(spec);
  auto dec = decode_job_spec(enc);
  REQUIRE(dec);
  REQUIRE(dec->steps.size() == 2);
  CHECK(dec->steps[1].command == "make -j2\n");
  CHECK(dec->steps[1].env == s.env);
  CHECK(dec->steps[1].argv_prefix == s.argv_prefix);
  CHECK(dec->steps[1].no_output_timeout_s == 42);
  CHECK(dec->steps[1].when == 2);
  CHECK(dec->steps[1].background);
  CHECK(dec->bash_env == spec.bash_env);
  for (size_t cut = 0; cut < enc.size(); ++cut) CHECK_FALSE(decode_job_spec(enc.substr(0, cut)));
  CHECK_FALSE(decode_job_spec(enc + "x"));
  // $BASH_ENV is a path in the job's view: absolute, or none.
  spec.bash_env = "tmp/relative";
  CHECK_FALSE(decode_job_spec(encode_job_spec(spec)));
  spec.bash_env.clear();
  CHECK(decode_job_spec(encode_job_spec(spec)));
}

TEST_CASE("reader bounds") {
  std::string p;
  put_u32(p, 1000);  // claims 1000 bytes, has 3
  p += "abc";
  Reader r(p);
  std::string s;
  CHECK_FALSE(r.str(s, 4096));
  Reader r2(p);
  CHECK_FALSE(r2.str(s, 10));  // over the caller's bound
  uint64_t v;
  Reader r3("1234567");
  CHECK_FALSE(r3.u64(v));
}
