// The checkout copier (checkout/) and the broker's side of it
// (broker/checkout.cpp, broker/tree_owner.cpp). The writer must refuse
// every hostile stream with a message that names what was wrong, and
// write nothing through a link; the reader must never read through a
// link. Tests run as root (they chown, and root's reader rules apply).
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "broker/checkout.hpp"
#include "checkout/copier.hpp"
#include "checkout/stream.hpp"

using namespace gh::checkout;

namespace {

struct TempDir {
  std::string base;
  TempDir() {
    char tmpl[] = "/tmp/gh-checkout-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    base = tmpl;
    REQUIRE(chmod(base.c_str(), 0755) == 0);
  }
  ~TempDir() { (void)!system(("rm -rf '" + base + "'").c_str()); }
  std::string path(const std::string& rel) const { return base + "/" + rel; }
  std::string mkdir(const std::string& rel, mode_t mode = 0755) const {
    REQUIRE(::mkdir(path(rel).c_str(), mode) == 0);
    REQUIRE(chmod(path(rel).c_str(), mode) == 0);
    return path(rel);
  }
  void write(const std::string& rel, const std::string& content) const {
    int fd = open(path(rel).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
    close(fd);
  }
  void link(const std::string& target, const std::string& rel) const { REQUIRE(symlink(target.c_str(), path(rel).c_str()) == 0); }
  bool exists(const std::string& rel) const {
    struct stat st {};
    return lstat(path(rel).c_str(), &st) == 0;
  }
};

std::string slurp(const std::string& path) {
  std::string out;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "<missing>";
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

int memfd_with(const std::string& bytes) {
  int fd = memfd_create("stream", MFD_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(write_all(fd, bytes));
  REQUIRE(lseek(fd, 0, SEEK_SET) == 0);
  return fd;
}

// Feeds `stream` to the writer with `dir` (created here) as its staging.
gh::Result<Summary> write_into(const std::string& dir, const std::string& stream) {
  if (access(dir.c_str(), F_OK) != 0) REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
  gh::UniqueFd in(memfd_with(stream));
  auto out = open_staging(dir);
  REQUIRE(out.ok());
  return write_tree(in.get(), out->get());
}

std::string refused_by_writer(const std::string& dir, const std::string& stream) {
  auto r = write_into(dir, stream);
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

std::string info_rec() { return record(RecordType::Info, Info{"the folder /src", "/src", false, "", "", ""}); }
std::string file_rec(const std::string& path, const std::string& body, uint32_t mode = 0644) {
  return record(RecordType::File, File{path, mode, body.size()}) + body;
}
std::string end_rec(uint64_t files, uint64_t bytes) { return record(RecordType::End, End{files, bytes}); }

// Runs the reader's second half on a listing into a memfd, then the
// writer from it; the reader's result is returned, the copy is in `out`.
ReadResult read_tree(const std::string& root, const std::vector<Listed>& entries, std::string& stream) {
  Listing l;
  l.info = Info{"the folder " + root, root, false, "", "", ""};
  l.root = root;
  l.root_fd = gh::UniqueFd(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(l.root_fd.get() >= 0);
  l.entries = entries;
  gh::UniqueFd out(memfd_create("out", MFD_CLOEXEC));
  ReadResult r = stream_tree(l, out.get());
  stream.clear();
  char buf[65536];
  ssize_t n;
  lseek(out.get(), 0, SEEK_SET);
  while ((n = read(out.get(), buf, sizeof buf)) > 0) stream.append(buf, static_cast<size_t>(n));
  return r;
}

void git(const std::string& dir, const std::string& args) {
  REQUIRE(system(("git -C '" + dir + "' " + args + " >/dev/null 2>&1").c_str()) == 0);
}

}  // namespace

TEST_CASE("stream: records round-trip through the codec and the writer") {
  Info info{"the git work tree /src/app", "/src/app", true, "main", "0123456789abcdef0123456789abcdef01234567", "app"};
  auto back = gh::ipc::decode<Info>(gh::ipc::encode(info));
  REQUIRE(back.ok());
  CHECK(back->description == info.description);
  CHECK(back->git);
  CHECK(back->sha1 == info.sha1);

  TempDir t;
  std::string body(3000, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 7);
  std::string s = record(RecordType::Info, info) + record(RecordType::Dir, Dir{"src", 0777}) +
                  file_rec("src/a.bin", body, 06777) + file_rec("src/b.txt", "hello\n", 0666) +
                  record(RecordType::Symlink, Symlink{"src/link", "../../../etc/passwd"}) + end_rec(3, body.size() + 6);
  auto sum = write_into(t.path("out"), s);
  REQUIRE_MESSAGE(sum.ok(), sum.error().message);
  CHECK(sum->files == 3);
  CHECK(sum->bytes == body.size() + 6);
  CHECK(sum->info.branch == "main");
  CHECK(slurp(t.path("out/src/a.bin")) == body);
  struct stat st {};
  REQUIRE(stat(t.path("out/src/a.bin").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0755);  // setuid, setgid, sticky and group/other write dropped
  REQUIRE(stat(t.path("out/src/b.txt").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0644);
  REQUIRE(stat(t.path("out/src").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0755);
  char target[256] = {};
  REQUIRE(readlink(t.path("out/src/link").c_str(), target, sizeof target - 1) > 0);
  CHECK(std::string(target) == "../../../etc/passwd");  // copied as a link, never followed
}

TEST_CASE("writer: a path under a link it made is refused, nothing is written through it") {
  TempDir t;
  const std::string victim = t.mkdir("victim");
  const std::string abs = info_rec() + record(RecordType::Symlink, Symlink{"w", victim}) + file_rec("w/evil.conf", "PWNED") + end_rec(2, 5);
  CHECK(refused_by_writer(t.path("out1"), abs) ==
        "`w/evil.conf` lies under `w`, a symbolic link; refusing to copy through it (replace the link by a real folder, "
        "or remove `w/evil.conf` from the tree)");
  const std::string rel = info_rec() + record(RecordType::Symlink, Symlink{"w", "../victim"}) +
                          record(RecordType::Dir, Dir{"w/sub", 0755}) + end_rec(1, 0);
  CHECK(refused_by_writer(t.path("out2"), rel).find("`w/sub` lies under `w`, a symbolic link") == 0);
  CHECK_FALSE(t.exists("victim/evil.conf"));
  CHECK_FALSE(t.exists("victim/sub"));
  CHECK(t.exists("out1/w"));  // the attempt ran: the link itself was made
}

TEST_CASE("writer: paths that leave the tree or name .git are refused") {
  TempDir t;
  auto one = [&](const std::string& name, const std::string& path) {
    return refused_by_writer(t.path(name), info_rec() + file_rec(path, "x") + end_rec(1, 1));
  };
  CHECK(one("o1", "a/../../b") == "`a/../../b` has a `..` component; only paths inside the tree are copied");
  CHECK(one("o2", "/etc/ld.so.preload") == "`/etc/ld.so.preload` is an absolute path; only paths inside the tree are copied");
  CHECK(one("o3", ".git/config") == "`.git/config` is in a .git folder, which is never copied (it may hold credentials)");
  CHECK(one("o4", "sub/.git/hooks/pre-commit") ==
        "`sub/.git/hooks/pre-commit` is in a .git folder, which is never copied (it may hold credentials)");
  CHECK(one("o5", std::string("a\0b", 3)) == "a path has a NUL byte (`a...`)");
  CHECK(one("o6", "a//b") == "`a//b` has an empty component");
  CHECK(one("o7", "./a") == "`./a` has a `.` component; only paths inside the tree are copied");
  CHECK(one("o8", "") == "the stream names an empty path");
  CHECK_FALSE(t.exists("etc"));
}

TEST_CASE("writer: framing is checked before meaning") {
  TempDir t;
  // A header that declares more than its type may carry: refused unread.
  std::string big = info_rec();
  const size_t at = big.size();
  std::string hdr = frame(RecordType::Dir, "");
  hdr[8] = static_cast<char>(0xa0);  // length 100000 (0x186a0)
  hdr[9] = static_cast<char>(0x86);
  hdr[10] = 0x01;
  CHECK(refused_by_writer(t.path("o1"), big + hdr) ==
        "the stream has a record of 100000 bytes at byte " + std::to_string(at) + " where at most " +
            std::to_string(max_payload(static_cast<uint32_t>(RecordType::Dir))) + " may be");
  // A string longer than its bound inside a record that fits.
  CHECK(refused_by_writer(t.path("o2"), info_rec() + record(RecordType::Symlink, Symlink{std::string(5000, 'a'), "x"}) + end_rec(1, 0)) ==
        "a malformed link record: a string of 5000 bytes where at most 4096 may be");
  CHECK(refused_by_writer(t.path("o3"), info_rec() + frame(static_cast<RecordType>(9), "")) ==
        "the stream has a record of unknown type 9 at byte " + std::to_string(info_rec().size()));
  CHECK(refused_by_writer(t.path("o4"), file_rec("a", "x") + end_rec(1, 1)) ==
        "the stream starts with a file record, not its info record");
  CHECK(refused_by_writer(t.path("o5"), info_rec() + info_rec() + end_rec(0, 0)) == "the stream has another info record after its start");
  CHECK(refused_by_writer(t.path("o6"), info_rec() + end_rec(0, 0) + "x") ==
        "the stream goes on after its end record (byte " + std::to_string(info_rec().size() + end_rec(0, 0).size()) + ")");
  CHECK(refused_by_writer(t.path("o7"), info_rec() + file_rec("a", "1") + file_rec("a", "2") + end_rec(2, 2)) ==
        "`a` is in the stream twice; refusing to overwrite it");
  CHECK(refused_by_writer(t.path("o8"), info_rec() + file_rec("a/b", "1") + end_rec(1, 1)) ==
        "`a/b` comes before its folder `a` in the stream");
  Info ctl{"the folder /x\x1b]0;pwned\a", "/x", false, "", "", ""};
  CHECK(refused_by_writer(t.path("o9"), record(RecordType::Info, ctl) + end_rec(0, 0)).find("control character") != std::string::npos);
}

TEST_CASE("writer: a truncated stream or a size that does not match is refused") {
  TempDir t;
  CHECK(refused_by_writer(t.path("o1"), info_rec()) == "the stream is truncated: it ends before its end record");
  const std::string half = info_rec() + end_rec(0, 0).substr(0, 5);
  CHECK(refused_by_writer(t.path("o2"), half) ==
        "the stream is truncated: it ends in the middle of a record header at byte " + std::to_string(half.size()));
  const std::string short_file = info_rec() + record(RecordType::File, File{"a", 0644, 10}) + "12345";
  CHECK(refused_by_writer(t.path("o3"), short_file) ==
        "the stream is truncated: it ends in the middle of a file's content at byte " + std::to_string(short_file.size()));
  // Fewer bytes than the size, then more records: the next header is read
  // out of step and refused by its magic.
  const std::string prefix = info_rec() + record(RecordType::File, File{"a", 0644, 10}) + "12345";
  CHECK(refused_by_writer(t.path("o4"), prefix + end_rec(1, 10) + end_rec(1, 10)) ==
        "the stream is out of step at byte " + std::to_string(prefix.size() + 5) +
            ": a record header has the wrong magic (a file's content did not match its size?)");
  CHECK(refused_by_writer(t.path("o5"), info_rec() + file_rec("a", "12345") + end_rec(2, 5)) ==
        "the stream's end record counts 2 files and 5 bytes, but it carried 1 files and 5 bytes");
  CHECK(refused_by_writer(t.path("o6"), info_rec() + record(RecordType::File, File{"big", 0644, kMaxBytes + 1}) + end_rec(1, 0)) ==
        "the stream holds more than 4 GiB of files; copy a smaller tree");
  CHECK_FALSE(t.exists("o6/big"));
}

TEST_CASE("writer: the staging folder must be empty and the writer's own") {
  TempDir t;
  t.mkdir("full", 0700);
  t.write("full/x", "x");
  auto r = open_staging(t.path("full"));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "the staging folder " + t.path("full") + " is not empty; refusing to copy into it");
  t.mkdir("theirs", 0700);
  REQUIRE(chown(t.path("theirs").c_str(), 4242, 4242) == 0);
  auto r2 = open_staging(t.path("theirs"));
  REQUIRE_FALSE(r2.ok());
  CHECK(r2.error().message == "the staging folder " + t.path("theirs") + " belongs to uid 4242, not to the writer's uid 0");
}

TEST_CASE("reader: a folder replaced by a link is refused, never read through") {
  TempDir t;
  t.mkdir("outside");
  t.write("outside/secret.txt", "CANARY");
  t.mkdir("tree");
  t.mkdir("tree/.circleci");
  t.write("tree/.circleci/config.yml", "version: 2.1\n");
  t.mkdir("tree/r");
  t.write("tree/r/secret.txt", "decoy");
  git(t.path("tree"), "init -q -b main .");
  git(t.path("tree"), "-c user.email=t@example.invalid -c user.name=t commit -qm init --allow-empty");
  git(t.path("tree"), "add -A");
  git(t.path("tree"), "-c user.email=t@example.invalid -c user.name=t commit -qm files");
  REQUIRE(system(("rm -rf '" + t.path("tree/r") + "'").c_str()) == 0);
  t.link(t.path("outside"), "tree/r");
  t.write("tree/.git/info/exclude", "r\n");

  auto listing = list_tree(t.path("tree/.circleci"));
  REQUIRE_MESSAGE(listing.ok(), listing.error().message);
  CHECK(listing->info.git);
  CHECK(listing->info.source == t.path("tree"));
  CHECK(listing->info.branch == "main");
  CHECK(listing->info.sha1.size() == 40);
  bool listed = false;
  for (const auto& e : listing->entries) listed = listed || e.path == "r/secret.txt";
  REQUIRE(listed);  // the attempt ran: git still lists the committed file
  gh::UniqueFd out(memfd_create("out", MFD_CLOEXEC));
  auto res = stream_tree(*listing, out.get());
  CHECK(res.failure == ReadFailure::Refused);
  CHECK(res.message ==
        "`r/secret.txt` lies under `r`, a symbolic link; refusing to copy through it (replace the link by a real folder, "
        "or remove `r/secret.txt` from the tree)");
  std::string stream;
  REQUIRE(lseek(out.get(), 0, SEEK_SET) == 0);
  char buf[65536];
  ssize_t n;
  while ((n = read(out.get(), buf, sizeof buf)) > 0) stream.append(buf, static_cast<size_t>(n));
  CHECK(stream.find("CANARY") == std::string::npos);

  // A link deeper down the listed path, found by the kernel's refusal.
  t.mkdir("tree2");
  t.mkdir("tree2/a");
  t.link(t.path("outside"), "tree2/a/b");
  std::string s2;
  auto r2 = read_tree(t.path("tree2"), {{"a/b/secret.txt", false}}, s2);
  CHECK(r2.failure == ReadFailure::Refused);
  CHECK(r2.message.find("`a/b/secret.txt` lies under `a/b`, a symbolic link") == 0);
  CHECK(s2.find("CANARY") == std::string::npos);
}

TEST_CASE("reader: a link is copied as a link, a file byte for byte") {
  TempDir t;
  t.mkdir("tree");
  t.mkdir("tree/sub");
  std::string body;
  for (int i = 0; i < 200000; ++i) body.push_back(static_cast<char>((i * 131) ^ (i >> 8)));
  t.write("tree/sub/data.bin", body);
  t.write("tree/empty", "");
  t.link("/etc/shadow", "tree/sub/abs");
  t.link("../sub/data.bin", "tree/rel");
  t.mkdir("tree/.git");
  t.write("tree/.git/config", "[remote] url = https://token@example.invalid\n");

  auto listing = list_tree(t.path("tree"));  // no work tree: the folder is walked
  REQUIRE_MESSAGE(listing.ok(), listing.error().message);
  CHECK_FALSE(listing->info.git);
  CHECK(listing->info.description == "the folder " + t.path("tree"));
  for (const auto& e : listing->entries) CHECK(e.path.find(".git") == std::string::npos);
  std::string stream;
  gh::UniqueFd out(memfd_create("out", MFD_CLOEXEC));
  auto res = stream_tree(*listing, out.get());
  REQUIRE_MESSAGE(res.failure == ReadFailure::None, res.message);
  CHECK(res.end.files == 4);
  CHECK(res.end.bytes == body.size());
  REQUIRE(lseek(out.get(), 0, SEEK_SET) == 0);
  t.mkdir("copy", 0700);
  auto dir = open_staging(t.path("copy"));
  REQUIRE(dir.ok());
  auto sum = write_tree(out.get(), dir->get());
  REQUIRE_MESSAGE(sum.ok(), sum.error().message);
  CHECK(slurp(t.path("copy/sub/data.bin")) == body);
  CHECK(slurp(t.path("copy/empty")).empty());
  char target[256] = {};
  REQUIRE(readlink(t.path("copy/sub/abs").c_str(), target, sizeof target - 1) > 0);
  CHECK(std::string(target) == "/etc/shadow");
  struct stat st {};
  REQUIRE(lstat(t.path("copy/rel").c_str(), &st) == 0);
  CHECK(S_ISLNK(st.st_mode));
  CHECK_FALSE(t.exists("copy/.git"));
}

TEST_CASE("reader: as root, another user's file in the tree is refused") {
  if (geteuid() != 0) return;
  TempDir t;
  t.mkdir("tree");
  t.write("tree/mine.txt", "root's");
  t.write("tree/theirs.txt", "a user's");
  REQUIRE(chown(t.path("tree/theirs.txt").c_str(), 4242, 4242) == 0);
  std::string s;
  auto r = read_tree(t.path("tree"), {{"mine.txt", false}, {"theirs.txt", false}}, s);
  CHECK(r.failure == ReadFailure::Refused);
  CHECK(r.message.find("`theirs.txt` belongs to uid 4242, but the tree is root's and is copied as root") == 0);
}

TEST_CASE("tree owner: a user's link on the way makes a root folder unreadable as root") {
  if (geteuid() != 0) return;
  TempDir t;
  t.mkdir("rootcfg");
  t.write("rootcfg/config.yml", "x");
  t.mkdir("user");
  t.link(t.path("rootcfg"), "user/.circleci");
  REQUIRE(lchown(t.path("user/.circleci").c_str(), 4242, 4242) == 0);
  REQUIRE(chown(t.path("user").c_str(), 4242, 4242) == 0);
  auto r = gh::broker::tree_owner(t.path("user/.circleci/config.yml"));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find(t.path("rootcfg") + " is root's, but " + t.path("user") +
                               " on the way to it can be changed by another user (it belongs to uid 4242)") == 0);
  // Straight to the root folder: root reads it.
  auto ok = gh::broker::tree_owner(t.path("rootcfg/config.yml"));
  REQUIRE_MESSAGE(ok.ok(), ok.error().message);
  CHECK(ok->uid == 0);
  CHECK(ok->folder == t.path("rootcfg"));
  // A user's own folder: that user reads it, whatever links led there.
  t.mkdir("user/real");
  t.write("user/real/config.yml", "y");
  REQUIRE(chown(t.path("user/real").c_str(), 4242, 4242) == 0);
  t.link("real", "user/l");
  auto u = gh::broker::tree_owner(t.path("user/l/config.yml"));
  REQUIRE_MESSAGE(u.ok(), u.error().message);
  CHECK(u->uid == 4242);
  CHECK(u->gid == 65534);  // no /etc/passwd entry: the overflow group
  CHECK(u->folder == t.path("user/real"));
  // A root folder others may write (even sticky): refused.
  t.mkdir("shared", 01777);
  t.write("shared/config.yml", "z");
  auto s = gh::broker::tree_owner(t.path("shared/config.yml"));
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find(t.path("shared") + " is root's but writable by its group or by others") == 0);
}

TEST_CASE("broker: a task's job file is staged through the writer; a job file is read as its owner") {
  if (geteuid() != 0) return;
  setenv("GATEHOUSE_CHECKOUT", GH_BUILD_ROOT "/checkout/gatehouse-checkout", 1);
  TempDir t;
  const std::string staging = t.mkdir("staging", 0700);
  auto info = gh::broker::stage_checkout({"", "version: 2.1\njobs: {}\n"}, staging, 4243, 4243);
  REQUIRE_MESSAGE(info.ok(), info.error().message);
  CHECK(info->description == "the task's job file");
  CHECK(info->files == 1);
  CHECK(slurp(staging + "/config.yml") == "version: 2.1\njobs: {}\n");
  struct stat st {};
  REQUIRE(stat((staging + "/config.yml").c_str(), &st) == 0);
  CHECK(st.st_uid == 4243);  // written by the job's uid, not by root
  CHECK((st.st_mode & 07777) == 0644);

  t.mkdir("repo");
  t.write("repo/config.yml", "hello");
  const std::string staging2 = t.mkdir("staging2", 0700);
  auto folder = gh::broker::stage_checkout({t.path("repo/config.yml"), ""}, staging2, 4243, 4243);
  REQUIRE_MESSAGE(folder.ok(), folder.error().message);
  CHECK(folder->description == "the folder " + t.path("repo"));
  CHECK(slurp(staging2 + "/config.yml") == "hello");

  auto bytes = gh::broker::read_file_as_owner(t.path("repo/config.yml"), 5);
  REQUIRE_MESSAGE(bytes.ok(), bytes.error().message);
  CHECK(*bytes == "hello");
  auto big = gh::broker::read_file_as_owner(t.path("repo/config.yml"), 4);
  REQUIRE_FALSE(big.ok());
  CHECK(big.error().message == t.path("repo/config.yml") + " is larger than 4 bytes");
  // A user's folder is read as that user: a root-only file in it is not readable.
  t.mkdir("user");
  t.write("user/config.yml", "root only");
  REQUIRE(chmod(t.path("user/config.yml").c_str(), 0600) == 0);
  REQUIRE(chown(t.path("user").c_str(), 4242, 4242) == 0);
  auto denied = gh::broker::read_file_as_owner(t.path("user/config.yml"), 100);
  REQUIRE_FALSE(denied.ok());
  CHECK(denied.error().message == "cannot open " + t.path("user/config.yml") + " as uid 4242: Permission denied");
}
