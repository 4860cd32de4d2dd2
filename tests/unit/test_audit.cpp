// The audit log: concurrent appenders keep one linear chain, and verify
// names the first line that was edited, removed, inserted, reordered or cut.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "broker/audit.hpp"
#include "cli/audit_verify.hpp"

using gh::broker::AuditLog;
using gh::cli::verify_audit_log;
using nlohmann::json;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/gh-audit-test.XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

std::vector<std::string> read_lines(const std::string& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::string read_all(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_raw(const std::string& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << bytes;
}

void write_lines(const std::string& file, const std::vector<std::string>& lines) {
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  write_raw(file, all);
}

// A log of n job records, 1..n.
std::string make_log(const TempDir& d, int n) {
  std::string file = d.path + "/audit.jsonl";
  auto log = AuditLog::open(file);
  REQUIRE_MESSAGE(log.ok(), (log.ok() ? "" : log.error().message));
  for (int i = 1; i <= n; ++i)
    REQUIRE(log->append({{"event", "admitted"}, {"job_id", "job-" + std::to_string(i)}, {"profile", "default"}}).ok());
  return file;
}

// Line i (1-based) with a field changed, its stale hash kept.
std::string edited(const std::string& line, const std::string& value) {
  json j = json::parse(line);
  j["job_id"] = value;
  return gh::audit::serialize(j);
}

// Line with a field changed and its own hash made right again.
std::string edited_and_rehashed(const std::string& line, const std::string& value) {
  json j = json::parse(line);
  j.erase("hash");
  j["job_id"] = value;
  j["hash"] = gh::audit::sha256_hex(gh::audit::serialize(j));
  return gh::audit::serialize(j);
}

void expect_bad(const std::string& file, size_t line, const std::string& why) {
  auto r = verify_audit_log(file);
  CAPTURE(r.why);
  CHECK_FALSE(r.ok);
  CHECK(r.bad_line == line);
  CHECK(r.why.find(why) != std::string::npos);
  CHECK(r.records == line - 1);
}

}  // namespace

TEST_CASE("a fresh log: seq from 1, prev chains exact line bytes, hash covers the rest, verify agrees") {
  TempDir d;
  std::string file = make_log(d, 3);
  auto lines = read_lines(file);
  REQUIRE(lines.size() == 3);
  std::string prev(64, '0');
  for (size_t i = 0; i < lines.size(); ++i) {
    json j = json::parse(lines[i]);
    CHECK(j["seq"] == i + 1);
    CHECK(j["prev"] == prev);
    CHECK(j["event"] == "admitted");
    std::string t = j["time"];
    CHECK(t.size() == 24);  // 2024-05-01T12:34:56.789Z
    CHECK(t.back() == 'Z');
    std::string h = j["hash"];
    j.erase("hash");
    CHECK(gh::audit::sha256_hex(gh::audit::serialize(j)) == h);
    prev = gh::audit::sha256_hex(lines[i]);
  }
  auto r = verify_audit_log(file);
  CHECK(r.ok);
  CHECK(r.records == 3);
  CHECK(r.bad_line == 0);
  CHECK(r.last_hash == prev);

  struct stat st {};
  REQUIRE(stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777 & ~0640) == 0);  // never wider than 0640
}

TEST_CASE("two processes appending 200 records each keep one linear, complete chain") {
  TempDir d;
  std::string file = d.path + "/audit.jsonl";
  constexpr int kEach = 200;
  pid_t kids[2];
  for (int who = 0; who < 2; ++who) {
    kids[who] = fork();
    REQUIRE(kids[who] >= 0);
    if (kids[who] == 0) {
      // Each process opens the file itself, as separate gatehouse processes do.
      auto log = AuditLog::open(file);
      if (!log) _exit(2);
      for (int i = 0; i < kEach; ++i)
        if (!log->append({{"event", "result"}, {"who", who}, {"i", i}})) _exit(3);
      _exit(0);
    }
  }
  for (pid_t k : kids) {
    int status = 0;
    REQUIRE(waitpid(k, &status, 0) == k);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  auto r = verify_audit_log(file);
  CAPTURE(r.why);
  CHECK(r.ok);
  CHECK(r.records == 2 * kEach);
  // Every record of each writer is there once, in the order it wrote them.
  int next[2] = {0, 0};
  bool interleaved = false;
  int last_who = -1;
  for (const auto& l : read_lines(file)) {
    json j = json::parse(l);
    int who = j["who"];
    CHECK(j["i"] == next[who]);
    ++next[who];
    if (last_who != -1 && who != last_who) interleaved = true;
    last_who = who;
  }
  CHECK(next[0] == kEach);
  CHECK(next[1] == kEach);
  std::string how = interleaved ? "yes" : "no (one finished before the other started)";
  MESSAGE("writers interleaved: " << how);
}

TEST_CASE("verify names the first bad line and why") {
  TempDir d;
  std::string file = make_log(d, 10);
  const auto good = read_lines(file);
  REQUIRE(good.size() == 10);
  auto lines = good;

  SUBCASE("an edited field in the middle") {
    lines[4] = edited(lines[4], "job-evil");
    write_lines(file, lines);
    expect_bad(file, 5, "its hash does not match its content (the line was edited)");
  }
  SUBCASE("an edited last line") {
    lines[9] = edited(lines[9], "job-evil");
    write_lines(file, lines);
    expect_bad(file, 10, "hash does not match");
  }
  SUBCASE("a deleted line") {
    lines.erase(lines.begin() + 3);
    write_lines(file, lines);
    expect_bad(file, 4, "prev does not match line 3 (a line was removed, inserted or edited before it)");
  }
  SUBCASE("the first line deleted") {
    lines.erase(lines.begin());
    write_lines(file, lines);
    expect_bad(file, 1, "prev is not 64 zeros");
  }
  SUBCASE("an inserted line (a copy of an earlier record)") {
    lines.insert(lines.begin() + 6, lines[2]);
    write_lines(file, lines);
    expect_bad(file, 7, "prev does not match line 6");
  }
  SUBCASE("swapped lines") {
    std::swap(lines[2], lines[3]);
    write_lines(file, lines);
    expect_bad(file, 3, "prev does not match line 2");
  }
  SUBCASE("a truncated last line") {
    std::string all = read_all(file);
    write_raw(file, all.substr(0, all.size() - 20));
    expect_bad(file, 10, "incomplete");
  }
  SUBCASE("only the final newline removed") {
    std::string all = read_all(file);
    write_raw(file, all.substr(0, all.size() - 1));
    expect_bad(file, 10, "incomplete");
  }
  SUBCASE("a non-JSON line") {
    lines[5] = "this is not json";
    write_lines(file, lines);
    expect_bad(file, 6, "not JSON");
  }
  SUBCASE("an empty line") {
    lines.insert(lines.begin() + 2, "");
    write_lines(file, lines);
    expect_bad(file, 3, "empty line");
  }
  SUBCASE("a JSON array, and an object without the chain's fields") {
    lines[1] = "[1,2]";
    write_lines(file, lines);
    expect_bad(file, 2, "not a JSON object");
    lines[1] = R"({"event":"admitted"})";
    write_lines(file, lines);
    expect_bad(file, 2, "lacks the string field");
  }
  SUBCASE("an edit with its hash recomputed: the following line's prev catches it") {
    lines[4] = edited_and_rehashed(lines[4], "job-evil");
    write_lines(file, lines);
    expect_bad(file, 6, "prev does not match line 5");
  }
  SUBCASE("whitespace added: same content, other bytes, the edited line is named") {
    lines[4].insert(1, " ");
    write_lines(file, lines);
    expect_bad(file, 5, "byte-for-byte");
  }
  SUBCASE("a seq skipped with prev and hash made consistent") {
    json j = json::parse(lines[9]);
    j.erase("hash");
    j["seq"] = 12;
    j["hash"] = gh::audit::sha256_hex(gh::audit::serialize(j));
    lines[9] = gh::audit::serialize(j);
    write_lines(file, lines);
    expect_bad(file, 10, "seq is 12, expected 10");
  }
  SUBCASE("a line longer than 64 KiB") {
    lines[7] = std::string(70 * 1024, 'x');
    write_lines(file, lines);
    expect_bad(file, 8, "longer than 64 KiB");
  }
  SUBCASE("the untouched file still verifies (the cases above can fail)") {
    write_lines(file, lines);
    auto r = verify_audit_log(file);
    CHECK(r.ok);
    CHECK(r.records == 10);
  }
}

TEST_CASE("verify: an empty file is an empty chain; a missing file is unreadable (bad_line 0)") {
  TempDir d;
  write_raw(d.path + "/empty", "");
  auto r = verify_audit_log(d.path + "/empty");
  CHECK(r.ok);
  CHECK(r.records == 0);
  CHECK(r.last_hash == std::string(64, '0'));
  auto m = verify_audit_log(d.path + "/missing");
  CHECK_FALSE(m.ok);
  CHECK(m.bad_line == 0);
  CHECK(m.why.find("cannot open") != std::string::npos);
  auto dir = verify_audit_log(d.path);
  CHECK_FALSE(dir.ok);
  CHECK(dir.bad_line == 0);
}

TEST_CASE("open refuses symlinks, non-regular files, and files others may write") {
  TempDir d;
  std::string real = d.path + "/real.jsonl";
  write_raw(real, "");
  chmod(real.c_str(), 0640);
  REQUIRE(AuditLog::open(real).ok());

  std::string link = d.path + "/link.jsonl";
  REQUIRE(symlink(real.c_str(), link.c_str()) == 0);
  auto l = AuditLog::open(link);
  REQUIRE_FALSE(l.ok());
  CHECK(l.error().message.find("symlink") != std::string::npos);

  std::string dangling = d.path + "/dangling.jsonl";
  REQUIRE(symlink((d.path + "/nowhere").c_str(), dangling.c_str()) == 0);
  auto dl = AuditLog::open(dangling);
  REQUIRE_FALSE(dl.ok());
  CHECK(dl.error().message.find("symlink") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(d.path + "/nowhere"));

  chmod(real.c_str(), 0660);
  auto g = AuditLog::open(real);
  REQUIRE_FALSE(g.ok());
  CHECK(g.error().message.find("writable by group or others (mode 0660)") != std::string::npos);
  chmod(real.c_str(), 0646);
  CHECK_FALSE(AuditLog::open(real).ok());

  auto dir = AuditLog::open(d.path);
  REQUIRE_FALSE(dir.ok());

  std::string fifo = d.path + "/fifo";
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  auto f = AuditLog::open(fifo);  // must not hang waiting for a reader
  REQUIRE_FALSE(f.ok());
  CHECK(f.error().message.find("not a regular file") != std::string::npos);
}

TEST_CASE("open creates one missing directory level (0750), not a tree") {
  TempDir d;
  auto one = AuditLog::open(d.path + "/gatehouse/audit.jsonl");
  REQUIRE(one.ok());
  struct stat st {};
  REQUIRE(stat((d.path + "/gatehouse").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0750);
  auto two = AuditLog::open(d.path + "/a/b/audit.jsonl");
  REQUIRE_FALSE(two.ok());
  CHECK(two.error().message.find("exists") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(d.path + "/a"));
}

TEST_CASE("append refuses malformed records and oversized ones, and writes nothing for them") {
  TempDir d;
  std::string file = make_log(d, 2);
  auto log = AuditLog::open(file);
  REQUIRE(log.ok());
  std::string before = read_all(file);
  CHECK_FALSE(log->append(json::array({1, 2})).ok());
  CHECK_FALSE(log->append({{"job_id", "x"}}).ok());
  CHECK_FALSE(log->append({{"event", 5}}).ok());
  auto reserved = log->append({{"event", "admitted"}, {"seq", 99}});
  REQUIRE_FALSE(reserved.ok());
  CHECK(reserved.error().message.find("\"seq\"") != std::string::npos);
  auto big = log->append({{"event", "denial"}, {"detail", std::string(70 * 1024, 'a')}});
  REQUIRE_FALSE(big.ok());
  CHECK(big.error().message.find("64 KiB") != std::string::npos);
  CHECK(read_all(file) == before);
  // Escaping counts: 12000 control characters become 72000 bytes of \u0001.
  CHECK_FALSE(log->append({{"event", "denial"}, {"detail", std::string(12000, '\x01')}}).ok());
  CHECK(read_all(file) == before);
  CHECK(log->append({{"event", "result"}}).ok());
  CHECK(verify_audit_log(file).records == 3);
}

TEST_CASE("invalid UTF-8 and non-ASCII in a field are stored (replaced / escaped) without throwing") {
  TempDir d;
  std::string file = make_log(d, 1);
  auto log = AuditLog::open(file);
  REQUIRE(log.ok());
  auto s = log->append({{"event", "refused"}, {"reason", std::string("bad \xff\xfe bytes, caf\xc3\xa9")}});
  REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
  auto lines = read_lines(file);
  REQUIRE(lines.size() == 2);
  CHECK(lines[1].find("bad \\ufffd") != std::string::npos);
  CHECK(lines[1].find("caf\\u00e9") != std::string::npos);
  for (unsigned char c : lines[1]) CHECK(c < 0x80);  // ensure_ascii: the line is plain ASCII
  CHECK(verify_audit_log(file).ok);
}

TEST_CASE("a torn tail stops appends (fail closed) and is left for the operator") {
  TempDir d;
  std::string file = make_log(d, 3);
  std::string torn = read_all(file) + R"({"event":"admitted","job_id":"job-)";
  write_raw(file, torn);
  auto log = AuditLog::open(file);
  REQUIRE(log.ok());
  auto s = log->append({{"event", "admitted"}});
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find("incomplete line") != std::string::npos);
  CHECK(s.error().message.find("gatehouse audit verify") != std::string::npos);
  CHECK(read_all(file) == torn);

  // A last line that is not a record at all also stops appends.
  write_raw(file, "garbage\n");
  auto g = log->append({{"event", "admitted"}});
  CHECK_FALSE(g.ok());
}

TEST_CASE("rotation: after a rename the next append starts a new chain at the path") {
  TempDir d;
  std::string file = make_log(d, 2);
  auto log = AuditLog::open(file);
  REQUIRE(log.ok());
  REQUIRE(log->append({{"event", "result"}}).ok());
  std::string old = file + ".1";
  REQUIRE(rename(file.c_str(), old.c_str()) == 0);
  REQUIRE(log->append({{"event", "admitted"}}).ok());
  auto r_old = verify_audit_log(old);
  auto r_new = verify_audit_log(file);
  CHECK(r_old.ok);
  CHECK(r_old.records == 3);
  CHECK(r_new.ok);
  CHECK(r_new.records == 1);
  CHECK(json::parse(read_lines(file).at(0))["prev"] == std::string(64, '0'));
}
