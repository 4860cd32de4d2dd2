// The per-task spool: nothing a job printed is lost across outages and
// restarts, what is dropped under the bound is accounted for exactly, and a
// damaged spool is reported, never trusted.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "agent/spool.hpp"
#include "agent/spool_format.hpp"

namespace fs = std::filesystem;
using gh::agent::TaskSpool;
using gh::protocol::Record;
using gh::protocol::RecordType;

namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr size_t kHeaderBytes = 24;       // records.log header
constexpr size_t kFrameOverhead = 12 + 9;  // frame header + type + seq

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/gh-spool-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string root() const { return (path / "spool").string(); }
};

gh::protocol::Task make_task(const std::string& id) {
  gh::protocol::Task t;
  t.id = id;
  t.token = "tok-0123456789abcdef.XYZ";
  t.job_name = "build";
  t.job_config = "version: 2.1\njobs:\n  build:\n    machine: true\n";
  t.meta.project = "acme/app";
  t.meta.branch = "main";
  t.signature = gh::protocol::Signature{"release-key", std::string(88, 'A')};
  return t;
}

Record step(uint32_t index, const std::string& state) {
  Record r;
  r.type = RecordType::Step;
  r.index = index;
  r.name = "Run tests";
  r.state = state;
  if (state == "finished") {
    r.outcome = "failed";
    r.code = 2;
    r.duration_ms = 1234;
  }
  return r;
}

// Piece i: 4 KiB that name their index, so a record can be matched to what was appended.
std::string piece(int i, size_t size = 4096) {
  std::string p(size, static_cast<char>('a' + i % 26));
  const std::string tag = "#" + std::to_string(i) + "#";
  p.replace(0, tag.size(), tag);
  return p;
}

TaskSpool fresh(const TempDir& d, const std::string& id = "t-0001", uint64_t limit = 64 * kMiB) {
  auto s = TaskSpool::create(d.root(), make_task(id), limit);
  REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
  return std::move(*s);
}

std::vector<TaskSpool> recover_all(const TempDir& d, std::vector<std::string>& problems, uint64_t limit = 64 * kMiB) {
  auto r = TaskSpool::recover(d.root(), limit, problems);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  return std::move(*r);
}

std::vector<Record> all_pending(TaskSpool& s) {
  auto p = s.pending(1 << 30, SIZE_MAX);
  REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.error().message));
  return *p;
}

std::vector<int64_t> seqs(const std::vector<Record>& rs) {
  std::vector<int64_t> out;
  for (const auto& r : rs) out.push_back(r.seq);
  return out;
}

}  // namespace

TEST_CASE("append, pending and acknowledge round trip") {
  TempDir d;
  TaskSpool s = fresh(d);
  CHECK(s.last_seq() == -1);
  CHECK(s.acked() == -1);
  REQUIRE(s.append_output("hello\n").ok());
  REQUIRE(s.append_step(step(0, "started")).ok());
  const std::string big = piece(7, 150 * 1024);  // three records: 64 KiB, 64 KiB, 22 KiB
  REQUIRE(s.append_output(big).ok());
  REQUIRE(s.append_step(step(0, "finished")).ok());
  CHECK(s.last_seq() == 5);

  auto rs = all_pending(s);
  REQUIRE(rs.size() == 6);
  CHECK(seqs(rs) == std::vector<int64_t>{0, 1, 2, 3, 4, 5});
  CHECK(rs[0].type == RecordType::Output);
  CHECK(rs[0].data == "hello\n");
  CHECK(rs[1].type == RecordType::Step);
  CHECK(rs[1].state == "started");
  CHECK(rs[1].name == "Run tests");
  CHECK(rs[2].data.size() == 65536);
  CHECK(rs[3].data.size() == 65536);
  CHECK(rs[2].data + rs[3].data + rs[4].data == big);
  CHECK(rs[5].outcome == "failed");
  CHECK(rs[5].code == 2);
  CHECK(rs[5].duration_ms == 1234);

  auto two = s.pending(2, SIZE_MAX);
  REQUIRE(two.ok());
  CHECK(seqs(*two) == std::vector<int64_t>{0, 1});
  auto tiny = s.pending(256, 1);  // a record larger than the budget still goes out alone
  REQUIRE(tiny.ok());
  CHECK(seqs(*tiny) == std::vector<int64_t>{0});

  REQUIRE(s.acknowledge(2).ok());
  CHECK(s.acked() == 2);
  CHECK(seqs(all_pending(s)) == std::vector<int64_t>{3, 4, 5});
  REQUIRE(s.acknowledge(1).ok());  // a late answer changes nothing
  CHECK(s.acked() == 2);
  auto bad = s.acknowledge(99);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("acknowledged record 99") != std::string::npos);
  CHECK(s.acked() == 2);
}

TEST_CASE("seq numbers continue across a restart and acked records never come back") {
  TempDir d;
  {
    TaskSpool s = fresh(d);
    for (int i = 0; i < 10; i++) REQUIRE(s.append_output(piece(i, 100)).ok());
    REQUIRE(s.pending(4, SIZE_MAX).ok());
    REQUIRE(s.acknowledge(5).ok());
  }
  std::vector<std::string> problems;
  auto spools = recover_all(d, problems);
  CHECK(problems.empty());
  REQUIRE(spools.size() == 1);
  TaskSpool& s = spools[0];
  CHECK(s.task().id == "t-0001");
  CHECK(s.task().token == "tok-0123456789abcdef.XYZ");
  CHECK(s.task().job_config == make_task("t-0001").job_config);
  REQUIRE(s.task().signature.has_value());
  CHECK(s.task().signature->key == "release-key");
  CHECK(s.last_seq() == 9);
  CHECK(s.acked() == 5);
  auto rs = all_pending(s);
  CHECK(seqs(rs) == std::vector<int64_t>{6, 7, 8, 9});
  CHECK(rs[0].data == piece(6, 100));
  REQUIRE(s.append_output("after restart").ok());
  CHECK(s.last_seq() == 10);
  REQUIRE(s.acknowledge(10).ok());
  CHECK(all_pending(s).empty());
  spools.clear();

  auto again = recover_all(d, problems);
  REQUIRE(again.size() == 1);
  CHECK(again[0].last_seq() == 10);
  CHECK(again[0].acked() == 10);
  CHECK(all_pending(again[0]).empty());
  REQUIRE(again[0].append_output("x").ok());
  CHECK(again[0].last_seq() == 11);
}

// An agent killed after it made records durable but before it wrote the
// broker's event number: the next agent cuts those records, and the
// broker's replay spools them again, once.
TEST_CASE("records past the broker mark are cut on recovery, and only those") {
  TempDir d;
  {
    TaskSpool s = fresh(d);
    for (int i = 0; i < 4; i++) REQUIRE(s.append_output(piece(i, 100)).ok());
    REQUIRE(s.sync().ok());
    REQUIRE(s.set_broker_seq(7).ok());  // events through 7 made records 0-3
    for (int i = 4; i < 6; i++) REQUIRE(s.append_output(piece(i, 100)).ok());
    REQUIRE(s.sync().ok());  // ... and the agent dies before set_broker_seq
  }
  std::vector<std::string> problems;
  auto spools = recover_all(d, problems);
  REQUIRE(spools.size() == 1);
  TaskSpool& s = spools[0];
  CHECK(s.broker_seq() == 7);
  CHECK(s.last_seq() == 5);
  auto cut = s.cut_unmarked_records();
  REQUIRE(cut.ok());
  CHECK(*cut == 2);
  CHECK(s.last_seq() == 3);
  CHECK(seqs(all_pending(s)) == std::vector<int64_t>{0, 1, 2, 3});
  REQUIRE(s.append_output(piece(4, 100)).ok());  // the replay, spooled once
  CHECK(s.last_seq() == 4);
  // Records were handed out in this process: none is cut any more.
  CHECK(*s.cut_unmarked_records() == 0);
  CHECK(s.last_seq() == 4);
}

TEST_CASE("acknowledged records are dropped from the file") {
  TempDir d;
  TaskSpool s = fresh(d, "t-0001", 8 * kMiB);  // rewrites once a quarter of the bound is acknowledged
  for (int i = 0; i < 1024; i++) REQUIRE(s.append_output(piece(i)).ok());  // 4 MiB
  const auto log = fs::path(s.path()) / "records.log";
  REQUIRE(s.acknowledge(100).ok());  // 400 KiB: not worth a rewrite yet
  CHECK(fs::file_size(log) == kHeaderBytes + 1024 * (kFrameOverhead + 4096));
  REQUIRE(s.acknowledge(1023).ok());
  CHECK(fs::file_size(log) == kHeaderBytes);
  REQUIRE(s.append_output("more").ok());
  CHECK(s.last_seq() == 1024);
  CHECK(seqs(all_pending(s)) == std::vector<int64_t>{1024});
  // The rewritten file starts at seq 1024: a restart continues from there.
  std::vector<std::string> problems;
  auto spools = recover_all(d, problems);
  REQUIRE(spools.size() == 1);
  CHECK(spools[0].acked() == 1023);
  CHECK(seqs(all_pending(spools[0])) == std::vector<int64_t>{1024});
  CHECK(all_pending(spools[0])[0].data == "more");
}

TEST_CASE("a torn last record is cut off; everything before it survives") {
  TempDir d;
  std::string log;
  {
    TaskSpool s = fresh(d);
    for (int i = 0; i < 5; i++) REQUIRE(s.append_output(piece(i, 1000)).ok());
    REQUIRE(s.sync().ok());
    log = s.path() + "/records.log";
  }
  const auto whole = kHeaderBytes + 5 * (kFrameOverhead + 1000);
  REQUIRE(fs::file_size(log) == whole);
  fs::resize_file(log, whole - 100);  // the crash interrupted the last write

  std::vector<std::string> problems;
  {
    auto spools = recover_all(d, problems);
    CHECK(problems.empty());
    REQUIRE(spools.size() == 1);
    CHECK(spools[0].last_seq() == 3);
    auto rs = all_pending(spools[0]);
    REQUIRE(rs.size() == 4);
    for (int i = 0; i < 4; i++) CHECK(rs[static_cast<size_t>(i)].data == piece(i, 1000));
    CHECK(fs::file_size(log) == kHeaderBytes + 4 * (kFrameOverhead + 1000));
    REQUIRE(spools[0].append_output(piece(9, 1000)).ok());
    CHECK(spools[0].last_seq() == 4);
  }
  // The size grew but the data never reached the disk: zeros after the last record.
  {
    std::ofstream f(log, std::ios::binary | std::ios::app);
    f << std::string(8192, '\0');
  }
  auto spools = recover_all(d, problems);
  CHECK(problems.empty());
  REQUIRE(spools.size() == 1);
  CHECK(spools[0].last_seq() == 4);
  CHECK(all_pending(spools[0]).back().data == piece(9, 1000));
}

TEST_CASE("a corrupted byte is reported, naming the file, and the folder is kept") {
  TempDir d;
  std::string log, bad_task_dir;
  {
    TaskSpool s = fresh(d);
    for (int i = 0; i < 20; i++) REQUIRE(s.append_output(piece(i, 1000)).ok());
    log = s.path() + "/records.log";
    TaskSpool other = fresh(d, "t-0002");
    bad_task_dir = other.path();
  }
  {
    std::fstream f(log, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(kHeaderBytes + 3 * (kFrameOverhead + 1000) + kFrameOverhead + 500));
    f.put('!');
  }
  {
    std::ofstream f(bad_task_dir + "/task.json", std::ios::trunc);
    f << "{\"format\": 1, \"task\": ";
  }
  std::vector<std::string> problems;
  auto spools = recover_all(d, problems);
  CHECK(spools.empty());
  REQUIRE(problems.size() == 2);
  CHECK(problems[0].find(d.root() + "/t-0001/records.log") != std::string::npos);
  CHECK(problems[0].find("corrupt") != std::string::npos);
  CHECK(problems[0].find("byte " + std::to_string(kHeaderBytes + 3 * (kFrameOverhead + 1000))) != std::string::npos);
  CHECK(problems[1].find(d.root() + "/t-0002/task.json") != std::string::npos);
  CHECK(fs::exists(log));
  CHECK(fs::exists(bad_task_dir));
}

TEST_CASE("well-framed records out of order, or a state that does not match, are refused") {
  TempDir d;
  std::string log, state;
  {
    TaskSpool s = fresh(d);
    REQUIRE(s.append_output("zero").ok());
    log = s.path() + "/records.log";
    state = s.path() + "/state.json";
  }
  Record skipped;
  skipped.seq = 2;  // seq 1 is missing
  skipped.data = "two";
  {
    std::ofstream f(log, std::ios::binary | std::ios::app);
    f << gh::agent::spool_format::make_frame(gh::agent::spool_format::encode_payload(skipped));
  }
  std::vector<std::string> problems;
  CHECK(recover_all(d, problems).empty());
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("/t-0001/records.log: record seq 2 where 1 was expected") != std::string::npos);

  fs::resize_file(log, kHeaderBytes + kFrameOverhead + 4);  // back to the one good record
  {
    std::ofstream f(state, std::ios::trunc);
    f << R"({"format":1,"acked":7,"dropped_bytes":0,"dropped_records":0,"completion":null})";
  }
  problems.clear();
  CHECK(recover_all(d, problems).empty());
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("record 7 was acknowledged but records.log ends at 0") != std::string::npos);
}

TEST_CASE("the bound keeps the head and the tail and one exact gap") {
  TempDir d;
  constexpr uint64_t kLimit = kMiB;
  constexpr int kPieces = 2560;  // 10 MiB of 4 KiB pieces, no acks (the control plane is down)
  {
    TaskSpool s = fresh(d, "t-0001", kLimit);
    for (int i = 0; i < kPieces; i++) REQUIRE(s.append_output(piece(i)).ok());
    CHECK(s.last_seq() == kPieces - 1);
  }
  std::vector<std::string> problems;
  auto spools = recover_all(d, problems, kLimit);
  REQUIRE(spools.size() == 1);
  TaskSpool& s = spools[0];
  const auto rs = all_pending(s);

  // Head: the oldest half of the bound. Tail: compacted to a quarter of the
  // bound whenever output passed the bound, so it held 64 pieces after the
  // compaction at seq 256 + 65k; the last one was at 2531 (k = 35), and 28
  // more were appended after it: 92 pieces, seq 2468..2559.
  const size_t head = kLimit / 2 / 4096;
  REQUIRE(rs.size() == head + 1 + 92);
  uint64_t output = 0;
  for (size_t i = 0; i < rs.size(); i++) {
    if (i == head) continue;
    CHECK(rs[i].type == RecordType::Output);
    CHECK(rs[i].data == piece(static_cast<int>(rs[i].seq)));
    output += rs[i].data.size();
  }
  const Record& gap = rs[head];
  REQUIRE(gap.type == RecordType::Gap);
  CHECK(gap.seq == static_cast<int64_t>(head));
  CHECK(gap.last_seq == 2467);
  CHECK(gap.bytes == (2467 - head + 1) * 4096);
  CHECK(rs[head - 1].seq == static_cast<int64_t>(head) - 1);
  CHECK(rs[head + 1].seq == 2468);
  CHECK(rs.back().seq == kPieces - 1);
  CHECK(output <= kLimit);
  CHECK(output + gap.bytes == uint64_t{kPieces} * 4096);
  CHECK(s.pending_output_bytes() == output);
  CHECK(s.dropped_bytes() == gap.bytes);
  CHECK(s.dropped_records() == 2467 - head + 1);
}

TEST_CASE("steps in the dropped range are dropped and counted; the gap counts output bytes only") {
  TempDir d;
  TaskSpool s = fresh(d, "t-0001", kMiB);
  int outputs = 0, steps = 0;
  for (int i = 0; i < 300; i++) {
    REQUIRE(s.append_output(piece(i)).ok());
    outputs++;
    if (i % 10 == 9) {
      REQUIRE(s.append_step(step(static_cast<uint32_t>(i / 10), "started")).ok());
      steps++;
    }
  }
  const auto rs = all_pending(s);
  std::vector<Record> gaps;
  int kept_outputs = 0, kept_steps = 0;
  for (const auto& r : rs) {
    if (r.type == RecordType::Gap) gaps.push_back(r);
    if (r.type == RecordType::Output) kept_outputs++;
    if (r.type == RecordType::Step) kept_steps++;
  }
  REQUIRE(gaps.size() == 1);
  CHECK(gaps[0].bytes == uint64_t(outputs - kept_outputs) * 4096);
  CHECK(s.dropped_records() == uint64_t(outputs - kept_outputs + steps - kept_steps));
  CHECK(steps - kept_steps > 0);
  CHECK(gaps[0].last_seq - gaps[0].seq + 1 == (outputs - kept_outputs) + (steps - kept_steps));
  // Consecutive: every seq from 0 to the last is covered exactly once.
  int64_t next = 0;
  for (const auto& r : rs) {
    CHECK(r.seq == next);
    next = (r.type == RecordType::Gap ? r.last_seq : r.seq) + 1;
  }
  CHECK(next == s.last_seq() + 1);
}

TEST_CASE("records handed out are never changed: later drops add a new gap") {
  TempDir d;
  TaskSpool s = fresh(d, "t-0001", kMiB);
  for (int i = 0; i < 300; i++) REQUIRE(s.append_output(piece(i)).ok());
  const auto first = all_pending(s);  // sent; the answer never came
  for (int i = 300; i < 900; i++) REQUIRE(s.append_output(piece(i)).ok());
  const auto second = all_pending(s);
  REQUIRE(second.size() > first.size());
  for (size_t i = 0; i < first.size(); i++) {
    CHECK(second[i].seq == first[i].seq);
    CHECK(second[i].type == first[i].type);
    CHECK(second[i].last_seq == first[i].last_seq);
    CHECK(second[i].bytes == first[i].bytes);
    CHECK(second[i].data == first[i].data);
  }
  int gaps = 0;
  for (const auto& r : second) gaps += r.type == RecordType::Gap;
  CHECK(gaps == 2);
  CHECK(second[first.size()].seq == first.back().seq + 1);
}

TEST_CASE("the completion survives a restart and ends the stream") {
  TempDir d;
  {
    TaskSpool s = fresh(d);
    REQUIRE(s.append_output("a").ok());
    REQUIRE(s.append_output("b").ok());
    gh::protocol::Completion c;
    c.outcome = "failed";
    c.exit_code = 1;
    c.reason = "step 2 exited 1";
    c.last_seq = 999;  // the spool knows better
    c.peak_memory_bytes = 104857600;
    c.cpu_usec = 5400000;
    c.duration_ms = 8123;
    REQUIRE(s.set_completion(c).ok());
    CHECK_FALSE(s.append_output("late").ok());
    CHECK_FALSE(s.set_completion(c).ok());
  }
  std::vector<std::string> problems;
  auto spools = recover_all(d, problems);
  REQUIRE(spools.size() == 1);
  auto c = spools[0].completion();
  REQUIRE(c.has_value());
  CHECK(c->outcome == "failed");
  CHECK(c->exit_code == 1);
  CHECK(c->reason == "step 2 exited 1");
  CHECK(c->last_seq == 1);
  CHECK(c->peak_memory_bytes == 104857600);
  CHECK(c->cpu_usec == 5400000);
  CHECK(c->duration_ms == 8123);
  CHECK(seqs(all_pending(spools[0])) == std::vector<int64_t>{0, 1});
  CHECK_FALSE(spools[0].append_output("late").ok());
}

TEST_CASE("remove deletes the folder; recover lists oldest first") {
  TempDir d;
  {
    TaskSpool a = fresh(d, "t-b-older");
    TaskSpool b = fresh(d, "t-a-newer");
    REQUIRE(a.append_output("x").ok());
  }
  std::vector<std::string> problems;
  auto spools = recover_all(d, problems);
  REQUIRE(spools.size() == 2);
  CHECK(spools[0].task().id == "t-b-older");
  CHECK(spools[1].task().id == "t-a-newer");
  const std::string dir = spools[0].path();
  REQUIRE(spools[0].remove().ok());
  CHECK_FALSE(fs::exists(dir));
  CHECK_FALSE(spools[0].append_output("y").ok());
  spools.clear();
  auto rest = recover_all(d, problems);
  CHECK(problems.empty());
  REQUIRE(rest.size() == 1);
  CHECK(rest[0].task().id == "t-a-newer");
}

TEST_CASE("hostile ids, a duplicate task and a loose spool folder are refused") {
  TempDir d;
  for (const std::string& id : std::vector<std::string>{"../x", "", "a/b", "x y", ".", std::string(65, 'a')}) {
    auto s = TaskSpool::create(d.root(), make_task(id), kMiB);
    CHECK_FALSE(s.ok());
  }
  CHECK_FALSE(fs::exists(d.path / "x"));
  CHECK_FALSE(fs::exists(d.root()));  // refused before anything touched the disk
  auto bad_token = make_task("t-1");
  bad_token.token = "short";
  CHECK_FALSE(TaskSpool::create(d.root(), bad_token, kMiB).ok());
  CHECK_FALSE(TaskSpool::create(d.root(), make_task("t-1"), 1000).ok());  // limit below the minimum

  TaskSpool s = fresh(d, "t-1");
  auto dup = TaskSpool::create(d.root(), make_task("t-1"), kMiB);
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.error().message.find("already spooled") != std::string::npos);
  auto mode = fs::status(s.path()).permissions();
  CHECK((mode & fs::perms::all) == fs::perms::owner_all);
  CHECK((fs::status(s.path() + "/task.json").permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));

  fs::create_directory(fs::path(d.root()) / "not a task");
  fs::create_directory(fs::path(d.root()) / "t-2.creating");
  std::vector<std::string> problems;
  auto spools = recover_all(d, problems);
  REQUIRE(spools.size() == 1);
  REQUIRE(problems.size() == 2);
  CHECK(problems[0].find("not a task/") == std::string::npos);
  CHECK(problems[0].find("not a task folder") != std::string::npos);
  CHECK(problems[1].find("removed") != std::string::npos);
  CHECK_FALSE(fs::exists(fs::path(d.root()) / "t-2.creating"));

  fs::permissions(d.root(), fs::perms::others_write, fs::perm_options::add);
  std::vector<std::string> ignored;
  auto open = TaskSpool::recover(d.root(), kMiB, ignored);
  REQUIRE_FALSE(open.ok());
  CHECK(open.error().message.find("writable by nobody else") != std::string::npos);
}

TEST_CASE("performance: 64 MiB in 4 KiB pieces, during an outage and with acks") {
  TempDir d;
  const std::string chunk = piece(1);
  constexpr int kPieces = 64 * 256;
  for (const bool outage : {true, false}) {
    TaskSpool s = fresh(d, outage ? "t-outage" : "t-acked", 16 * kMiB);
    const auto start = std::chrono::steady_clock::now();
    const std::clock_t cpu_start = std::clock();
    for (int i = 0; i < kPieces; i++) {
      REQUIRE(s.append_output(chunk).ok());
      if (!outage && i % 256 == 255) {
        auto batch = s.pending(256, 2 << 20);  // 256 pieces are 1.4 MB once encoded
        REQUIRE(batch.ok());
        REQUIRE(s.acknowledge(batch->back().seq).ok());
      }
    }
    REQUIRE(s.sync().ok());
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double cpu = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    MESSAGE(std::string(outage ? "outage (no acks): " : "with acks: ") << 64.0 / secs << " MB/s ("
            << 64.0 / cpu << " MB/s of CPU time; the rest is fsync)");
    CHECK(s.last_seq() == kPieces - 1);
    CHECK(s.pending_output_bytes() <= 16 * kMiB);
    if (!outage) CHECK(s.pending_output_bytes() == 0);
  }
}

TEST_CASE("a batch of short lines stays under the request bound once encoded") {
  // 768 KiB of 100-byte lines grew past 1 MiB as base64 and JSON, and the
  // agent retried the same refused call for ever (bench/serve.sh found it).
  TempDir d;
  TaskSpool s = fresh(d, "t-short", 16 * kMiB);
  const std::string line(99, 'x');
  for (int i = 0; i < 20000; i++) REQUIRE(s.append_output(line + "\n").ok());
  const size_t bound = gh::protocol::kMaxRequestBytes - 16 * 1024;
  auto batch = s.pending(1u << 20, bound);
  REQUIRE(batch.ok());
  CHECK(batch->size() > 1000);
  CHECK(gh::protocol::encode_records(*batch).size() <= gh::protocol::kMaxRequestBytes);
}
