// The control-plane codec (docs/protocol.md): every message round-trips,
// and hostile bodies are refused with a message that names the key and the
// problem.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "protocol/protocol.hpp"

using namespace gh::protocol;

namespace {

const std::string kToken = "abcdefghij0123456789+/=._~-";
const std::string kSig88 = std::string(86, 'A') + "==";  // 64 zero bytes

template <typename T>
std::string refusal(const gh::Result<T>& r) {
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

// A claim answer with `task_fields` spliced into a valid task object.
std::string task_body(const std::string& task_fields) {
  return R"({"task":{"id":"t-1","token":")" + kToken + R"(","job":{"name":"build","config":"version: 2.1"})" +
         task_fields + "}}";
}

Task sample_task() {
  Task t;
  t.id = "t-0001_x";
  t.token = kToken;
  t.job_name = "build";
  t.job_config = "version: 2.1\njobs:\n  build:\n    steps: [\"echo \\\"hi\\\"\"]\n";
  t.meta = JobMetaWire{"acme/app", "main", "", "push", "0123abcd"};
  t.signature = Signature{"release-key", kSig88};
  return t;
}

}  // namespace

TEST_CASE("every message round-trips through its encoder and decoder") {
  SUBCASE("claim") {
    const ClaimRequest c{"build-host-1", "acme/linux", 64, 0};
    CHECK(encode(c) == R"({"free_slots":64,"resource_class":"acme/linux","runner":"build-host-1","wait":0})");
    auto d = decode_claim(encode(c));
    REQUIRE(d.ok());
    CHECK(*d == c);
  }
  SUBCASE("task, signed and unsigned, with non-ASCII meta") {
    Task t = sample_task();
    t.meta.branch = "feature/café-ü";
    auto d = decode_task_answer(encode_task_answer(t));
    REQUIRE(d.ok());
    CHECK(*d == t);
    t.signature.reset();
    const std::string body = encode_task_answer(t);
    CHECK(body.find("signature") == std::string::npos);
    auto u = decode_task_answer(body);
    REQUIRE(u.ok());
    CHECK(*u == t);
  }
  SUBCASE("task with meta absent and signature null") {
    auto d = decode_task_answer(task_body(R"(,"signature":null)"));
    REQUIRE(d.ok());
    CHECK(d->meta == JobMetaWire{});
    CHECK_FALSE(d->signature.has_value());
    CHECK(d->job_config == "version: 2.1");
  }
  SUBCASE("heartbeat and its answer") {
    for (const char* state : {"running", "delivering"}) {
      auto d = decode_heartbeat(encode_heartbeat(state));
      REQUIRE(d.ok());
      CHECK(*d == state);
    }
    for (const HeartbeatAnswer& a : {HeartbeatAnswer{false, -1}, HeartbeatAnswer{true, kMaxSeq}}) {
      auto d = decode_heartbeat_answer(encode(a));
      REQUIRE(d.ok());
      CHECK(*d == a);
    }
  }
  SUBCASE("records of every type, output bytes not text") {
    std::vector<Record> rs(5);
    rs[0].seq = 7;
    rs[0].data = std::string("\0\xff\x80 binary\n", 11);
    rs[1] = Record{8, RecordType::Step, "", 0, "Checkout code", "started", "", 0, 0, 0, 0};
    rs[2] = Record{9, RecordType::Step, "", 0, "Checkout code", "finished", "failed", -1, 12, 0, 0};
    rs[3] = Record{10, RecordType::Gap, "", 0, "", "", "", 0, 0, 9120, 73400320};
    rs[4].seq = 9121;
    rs[4].data = std::string(kMaxOutputRecordBytes, 'x');
    const std::string body = encode_records(rs);
    CHECK(body.find(R"({"data":"AP+AIGJpbmFyeQo=","seq":7,"type":"output"})") != std::string::npos);
    CHECK(body.find(R"("state":"started","type":"step"})") != std::string::npos);  // no outcome for a started step
    auto d = decode_records(body);
    REQUIRE(d.ok());
    CHECK(*d == rs);
    auto empty = decode_records(encode_records({}));
    REQUIRE(empty.ok());
    CHECK(empty->empty());
  }
  SUBCASE("acked, completion, error, ok") {
    for (int64_t n : {int64_t{-1}, int64_t{0}, kMaxSeq}) {
      auto d = decode_acked(encode_acked(n));
      REQUIRE(d.ok());
      CHECK(*d == n);
    }
    const Completion c{"failed", 1, "step 2 exited 1\n\"quoted\"", 3, 104857600, 5400000, 8123};
    auto dc = decode_completion(encode(c));
    REQUIRE(dc.ok());
    CHECK(*dc == c);
    for (const ErrorAnswer& e : {ErrorAnswer{"out_of_order", "", -1}, ErrorAnswer{"missing_records", "resend", 41},
                                 ErrorAnswer{"busy", "later", -1}}) {
      auto de = decode_error(encode(e));
      REQUIRE(de.ok());
      CHECK(*de == e);
    }
    CHECK(encode_ok() == R"({"ok":true})");
    CHECK(decode_ok(encode_ok()).ok());
    CHECK(refusal(decode_ok(R"({"ok":false})")) == "ok: is false; the server did not store the completion");
  }
}

TEST_CASE("framing: size first, then one JSON object") {
  SUBCASE("oversize bodies are refused before parsing, whatever they hold") {
    std::string big = R"({"acked":1})";
    big.resize(kMaxRequestBytes + 1, ' ');
    CHECK(refusal(decode_claim(big)) == "the request is 1048577 bytes, over the limit of 1048576 bytes");
    CHECK(decode_acked(big).ok());  // an answer may be up to 4 MiB
    big.resize(kMaxResponseBytes + 1, ' ');
    CHECK(refusal(decode_acked(big)) == "the answer is 4194305 bytes, over the limit of 4194304 bytes");
  }
  CHECK(refusal(decode_acked("")).find("not valid JSON") == 0);
  CHECK(refusal(decode_acked("hello")).find("not valid JSON: parse error at line 1, column 1") == 0);
  CHECK(refusal(decode_acked("[1]")) == "the answer is array, not a JSON object");
  CHECK(refusal(decode_acked("\"x\"")) == "the answer is string, not a JSON object");
  CHECK(refusal(decode_acked(R"({"acked":1} {"acked":2})")).find("expected end of input") != std::string::npos);
  CHECK(refusal(decode_acked(R"({"acked":1,})")).find("not valid JSON") == 0);
  CHECK(refusal(decode_acked(R"({"acked":1} // note)")).find("not valid JSON") == 0);
  SUBCASE("nesting is bounded") {
    const std::string deep = R"({"acked":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
    CHECK(refusal(decode_acked(deep)) == "acked[0][0][0][0][0][0][0]: nested deeper than 8 levels");
  }
}

TEST_CASE("duplicate keys are refused at any depth, named by their path") {
  CHECK(refusal(decode_acked(R"({"acked":1,"acked":2})")) == "acked: the key appears twice");
  CHECK(refusal(decode_task_answer(task_body(R"(,"meta":{"trigger":"push","trigger":"tag"})"))) ==
        "task.meta.trigger: the key appears twice");
  CHECK(refusal(decode_records(R"({"records":[{"seq":0,"type":"output","data":""},)"
                               R"({"seq":1,"type":"gap","seq":1,"last_seq":1,"bytes":0}]})")) ==
        "records[1].seq: the key appears twice");
  // Same key in sibling objects is fine.
  CHECK(decode_records(R"({"records":[{"seq":0,"type":"output","data":""},{"seq":1,"type":"output","data":""}]})").ok());
}

TEST_CASE("unknown and missing keys") {
  CHECK(refusal(decode_acked(R"({"acked":1,"extra":0})")) == "extra: unknown key (allowed: acked)");
  CHECK(refusal(decode_task_answer(task_body(R"(,"meta":{"branch":"main","author":"x"})"))) ==
        "task.meta.author: unknown key (allowed: project, branch, tag, trigger, revision)");
  CHECK(refusal(decode_task_answer(R"({"task":{"id":"t","token":")" + kToken + R"(","job":{"name":"b","config":"","env":1}}})")) ==
        "task.job.env: unknown key (allowed: name, config)");
  CHECK(refusal(decode_records(R"({"records":[{"seq":0,"type":"step","index":0,"name":"a","state":"started","code":0}]})")) ==
        "records[0].code: unknown key (allowed: seq, type, index, name, state)");
  CHECK(refusal(decode_records(R"({"records":[{"seq":0,"type":"output","data":"","bytes":1}]})")) ==
        "records[0].bytes: unknown key (allowed: seq, type, data)");
  CHECK(refusal(decode_claim(R"({"runner":"r","resource_class":"c","free_slots":1})")) == "wait: missing (required)");
  CHECK(refusal(decode_records(R"({"records":[{"seq":0,"type":"step","index":0,"name":"a","state":"finished","code":0,"duration_ms":1}]})")) ==
        "records[0].outcome: missing (required)");
  CHECK(refusal(decode_error(R"({"error":"out_of_order"})")) == "acked: missing (required with error out_of_order)");
}

TEST_CASE("types, ranges and enumerations") {
  const auto claim = [](const std::string& free_slots, const std::string& wait) {
    return decode_claim(R"({"runner":"r","resource_class":"c","free_slots":)" + free_slots + R"(,"wait":)" + wait + "}");
  };
  CHECK(claim("1", "60").ok());
  CHECK(refusal(claim("1", "\"30\"")) == "wait: must be an integer from 0 to 60, not a string");
  CHECK(refusal(claim("1.5", "0")) == "free_slots: must be an integer from 1 to 64, not the number 1.5");
  CHECK(refusal(claim("1.0", "0")).find("not the number 1.0") != std::string::npos);
  CHECK(refusal(claim("1e1", "0")).find("not the number 10.0") != std::string::npos);
  CHECK(refusal(claim("true", "0")) == "free_slots: must be an integer from 1 to 64, not a boolean");
  CHECK(refusal(claim("null", "0")) == "free_slots: must be an integer from 1 to 64, not null");
  CHECK(refusal(claim("0", "0")) == "free_slots: 0 is out of range: must be an integer from 1 to 64");
  CHECK(refusal(claim("65", "0")) == "free_slots: 65 is out of range: must be an integer from 1 to 64");
  CHECK(refusal(claim("1", "61")) == "wait: 61 is out of range: must be an integer from 0 to 60");
  CHECK(refusal(claim("1", "-1")) == "wait: -1 is out of range: must be an integer from 0 to 60");
  CHECK(refusal(claim("1", "18446744073709551615")).find("wait: 18446744073709551615 is out of range") == 0);
  CHECK(refusal(claim("1", "99999999999999999999")).find("wait: must be an integer from 0 to 60, not the number") == 0);
  CHECK(refusal(decode_claim(R"({"runner":5,"resource_class":"c","free_slots":1,"wait":0})")) ==
        "runner: must be a string, not a number");
  CHECK(refusal(decode_heartbeat_answer(R"({"cancel":1,"acked":0})")) == "cancel: must be true or false, not a number");
  CHECK(refusal(decode_heartbeat_answer(R"({"cancel":false,"acked":-2})")) ==
        "acked: -2 is out of range: must be an integer from -1 to 9007199254740991");
  CHECK(refusal(decode_acked(R"({"acked":9007199254740992})")).find("acked: 9007199254740992 is out of range") == 0);
  CHECK(refusal(decode_records(R"({"records":[{"seq":-1,"type":"output","data":""}]})")) ==
        "records[0].seq: -1 is out of range: must be an integer from 0 to 9007199254740991");
  CHECK(refusal(decode_records(R"({"records":{}})")) == "records: must be an array, not an object");
  CHECK(refusal(decode_records(R"({"records":[7]})")) == "records[0]: must be an object, not a number");
  CHECK(refusal(decode_task_answer(task_body(R"(,"meta":{"trigger":"forks"})"))) ==
        R"(task.meta.trigger: "forks" is not one of push, pull_request, fork_pull_request, tag, schedule, manual, api (or empty))");
  CHECK(refusal(decode_heartbeat(R"({"state":"idle"})")) == R"(state: "idle" is not one of running, delivering)");
  CHECK(refusal(decode_records(R"({"records":[{"seq":0,"type":"log","data":""}]})")) ==
        R"(records[0].type: "log" is not one of output, step, gap)");
  CHECK(refusal(decode_records(R"({"records":[{"seq":0,"type":"step","index":0,"name":"a","state":"finished","outcome":"ok","code":0,"duration_ms":1}]})")) ==
        R"(records[0].outcome: "ok" is not one of passed, failed, timed_out, canceled, not_run, killed)");
  CHECK(refusal(decode_completion(R"({"outcome":"success","exit_code":0,"reason":"","last_seq":-1,"peak_memory_bytes":0,"cpu_usec":0,"duration_ms":0})")) ==
        R"(outcome: "success" is not one of passed, failed, refused, infra_error, canceled, timed_out)");
  CHECK(refusal(decode_error(R"({"error":"teapot"})")).find(R"(error: "teapot" is not one of bad_request)") == 0);
  // Hostile values are quoted escaped and short.
  const std::string long_state = refusal(decode_heartbeat(R"({"state":")" + std::string(1000, 'z') + "\\u0007\"}"));
  CHECK(long_state == "state: \"" + std::string(64, 'z') + "\"... is not one of running, delivering");
}

TEST_CASE("strings: charsets, lengths, UTF-8") {
  CHECK(refusal(decode_task_answer(R"({"task":{"id":"../x","token":")" + kToken +
                                   R"(","job":{"name":"b","config":""}}})")) ==
        R"(task.id: must be 1 to 64 characters from A-Z a-z 0-9 _ - ("." at position 0 is not))");
  CHECK(refusal(decode_task_answer(R"({"task":{"id":"t","token":"short!","job":{"name":"b","config":""}}})")) ==
        "task.token: must be 16 to 256 characters from A-Z a-z 0-9 . _ ~ + / = - (it is 6)");
  const std::string bad_token = refusal(decode_task_answer(
      R"({"task":{"id":"t","token":"secretsecret secret","job":{"name":"b","config":""}}})"));
  CHECK(bad_token == "task.token: must be 16 to 256 characters from A-Z a-z 0-9 . _ ~ + / = - (position 12 is not)");
  CHECK(task_id_problem(std::string(64, 'a')).empty());
  CHECK(task_id_problem(std::string(65, 'a')).find("(it is 65)") != std::string::npos);
  CHECK(task_id_problem("").find("(it is 0)") != std::string::npos);
  CHECK(token_problem(std::string(16, 'a')).empty());
  CHECK_FALSE(token_problem(std::string(257, 'a')).empty());
  CHECK(runner_name_problem("build-host_1.example").empty());
  CHECK_FALSE(runner_name_problem("a/b").empty());
  CHECK(resource_class_problem("acme/linux.large").empty());
  CHECK_FALSE(resource_class_problem("acme linux").empty());
  CHECK(refusal(decode_heartbeat("{\"state\":\"\xff\"}")).find("ill-formed UTF-8 byte") != std::string::npos);
  CHECK(refusal(decode_heartbeat(R"({"state":"\ud800"})")).find("not valid JSON") == 0);
  CHECK(refusal(decode_task_answer(task_body(R"(,"meta":{"branch":")" + std::string(257, 'b') + R"("})"))) ==
        "task.meta.branch: must be 0 to 256 characters, not 257");
  CHECK(refusal(decode_task_answer(task_body(",\"meta\":{\"branch\":\"main\xc3\"}"))).find("ill-formed UTF-8") !=
        std::string::npos);
  std::string accents;
  for (int i = 0; i < 256; ++i) accents += "\xc3\xa9";  // 256 characters, 512 bytes
  CHECK(decode_task_answer(task_body(R"(,"meta":{"branch":")" + accents + R"("})")).ok());
  CHECK(refusal(decode_task_answer(task_body(R"(,"meta":{"tag":"v1\nFAKE LOG LINE"})"))) ==
        "task.meta.tag: has a control character at byte 2");
  CHECK(refusal(decode_task_answer(R"({"task":{"id":"t","token":")" + kToken + R"(","job":{"name":"","config":""}}})")) ==
        "task.job.name: must be 1 to 128 characters, not 0");
  std::string config(kMaxJobConfigBytes + 1, 'x');
  CHECK(refusal(decode_task_answer(R"({"task":{"id":"t","token":")" + kToken + R"(","job":{"name":"b","config":")" +
                                   config + R"("}}})")) == "task.job.config: is 1048577 bytes, over the limit of 1048576");
}

TEST_CASE("base64 is strict and bounded") {
  const auto output = [](const std::string& data) {
    return decode_records(R"({"records":[{"seq":0,"type":"output","data":")" + data + R"("}]})");
  };
  const std::string not_canonical =
      "records[0].data: is not canonical padded base64 (A-Z a-z 0-9 + /, '=' padding, no whitespace)";
  auto ok = output("aGk=");
  REQUIRE(ok.ok());
  CHECK((*ok)[0].data == "hi");
  for (const char* bad : {"aGk", "aGk==", "a=Gk", "aGk=\\n", " aGk=", "aGl=", "aG-=", "====", "aGk=aGk="})
    CHECK_MESSAGE(refusal(output(bad)) == not_canonical, bad);
  CHECK(refusal(decode_records(R"({"records":[{"seq":0,"type":"output","data":7}]})")) ==
        "records[0].data: must be a string, not a number");
  CHECK(output(base64_encode(std::string(kMaxOutputRecordBytes, 'x'))).ok());
  CHECK(refusal(output(base64_encode(std::string(kMaxOutputRecordBytes + 1, 'x')))) ==
        "records[0].data: decodes to more than 65536 bytes");
  CHECK(base64_decode("aGk=", 1) == std::nullopt);
  CHECK(base64_decode("", 0) == std::string());
  SUBCASE("signatures are exactly 64 bytes") {
    CHECK(decode_task_answer(task_body(R"(,"signature":{"ed25519":")" + kSig88 + R"("})")).ok());
    CHECK(refusal(decode_task_answer(task_body(R"(,"signature":{"key":"k","ed25519":")" +
                                               base64_encode(std::string(63, 'x')) + R"("})"))) ==
          "task.signature.ed25519: decodes to 63 bytes; an Ed25519 signature is 64");
    CHECK(refusal(decode_task_answer(task_body(R"(,"signature":{"key":"k","ed25519":")" +
                                               base64_encode(std::string(65, 'x')) + R"("})"))) ==
          "task.signature.ed25519: decodes to more than 64 bytes");
    CHECK(refusal(decode_task_answer(task_body(R"(,"signature":{"key":"k"})"))) ==
          "task.signature.ed25519: missing (required)");
    CHECK(refusal(decode_task_answer(task_body(R"(,"signature":"x")"))) ==
          "task.signature: must be an object, not a string");
  }
}

TEST_CASE("record batches: bounded, consecutive, gaps advance the sequence") {
  const auto out = [](int64_t seq) { return R"({"seq":)" + std::to_string(seq) + R"(,"type":"output","data":""})"; };
  std::string batch = R"({"records":[)";
  for (int i = 0; i < 256; ++i) batch += (i ? "," : "") + out(100 + i);
  CHECK(decode_records(batch + "]}").ok());
  CHECK(refusal(decode_records(batch + "," + out(356) + "]}")) ==
        "records: 257 records, over the limit of 256 per call; split the batch");
  CHECK(refusal(decode_records(R"({"records":[)" + out(0) + "," + out(5) + "]}")) ==
        "records[1].seq: 5 does not follow the previous record: expected 1 (seq numbers in a batch are consecutive)");
  CHECK(refusal(decode_records(R"({"records":[)" + out(1) + "," + out(1) + "]}")).find("expected 2") !=
        std::string::npos);
  const std::string gap = R"({"seq":3,"type":"gap","last_seq":9,"bytes":100})";
  auto ok = decode_records(R"({"records":[)" + gap + "," + out(10) + "]}");
  REQUIRE(ok.ok());
  CHECK((*ok)[0].last_seq == 9);
  CHECK((*ok)[1].seq == 10);
  CHECK(refusal(decode_records(R"({"records":[)" + gap + "," + out(4) + "]}")).find("expected 10") !=
        std::string::npos);
  CHECK(refusal(decode_records(R"({"records":[{"seq":3,"type":"gap","last_seq":2,"bytes":0}]})")) ==
        "records[0].last_seq: 2 is below seq 3; a gap covers seq through last_seq");
  CHECK(decode_records(R"({"records":[{"seq":3,"type":"gap","last_seq":3,"bytes":0}]})").ok());
}

TEST_CASE("a refused task still yields its id and token when those are sound") {
  const std::string body = task_body(R"(,"meta":{"trigger":"forks"})");
  CHECK_FALSE(decode_task_answer(body).ok());
  auto who = decode_task_identity(body);
  REQUIRE(who.has_value());
  CHECK(who->id == "t-1");
  CHECK(who->token == kToken);
  CHECK_FALSE(decode_task_identity(R"({"task":{"id":"../x","token":")" + kToken + R"("}})").has_value());
  CHECK_FALSE(decode_task_identity(R"({"task":{"id":"a","id":"b","token":")" + kToken + R"("}})").has_value());
  CHECK_FALSE(decode_task_identity("[]").has_value());
}

TEST_CASE("signed_bytes is the documented canonical form") {
  const JobMetaWire meta{"acme/app", "main", "", "push", "abc"};
  CHECK(signed_bytes("build", "version: 2.1\n", meta) ==
        "gatehouse-job-v1\n"
        R"({"job":{"config":"version: 2.1\n","name":"build"},)"
        R"("meta":{"branch":"main","project":"acme/app","revision":"abc","tag":"","trigger":"push"}})");
  CHECK(signed_bytes("b", "é\t", JobMetaWire{}) ==
        "gatehouse-job-v1\n"
        R"({"job":{"config":"é\t","name":"b"},"meta":{"branch":"","project":"","revision":"","tag":"","trigger":""}})");
  // Every field is covered: changing any one changes the bytes.
  JobMetaWire other = meta;
  other.tag = "v1";
  CHECK(signed_bytes("build", "version: 2.1\n", other) != signed_bytes("build", "version: 2.1\n", meta));
  CHECK(signed_bytes("build2", "version: 2.1\n", meta) != signed_bytes("build", "version: 2.1\n", meta));
}

TEST_CASE("is_valid_utf8") {
  CHECK(is_valid_utf8("plain é"));
  CHECK_FALSE(is_valid_utf8("\xc3"));
  CHECK_FALSE(is_valid_utf8("\xed\xa0\x80"));  // an encoded surrogate
}
