// POST /build: the query's rules, and the base images read from the
// Dockerfile inside the build context, the way the daemon reads both. The
// contexts are real tar archives (some compressed) written with libarchive.
#include <doctest/doctest.h>

#include <archive.h>
#include <archive_entry.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "docker/build_rules.hpp"
#include "docker/context_repack.hpp"

using gh::docker::BuildQuery;
using gh::docker::check_build_query;
using gh::docker::dockerfile_bases;
using gh::docker::dockerfile_images;
using gh::docker::JobRules;
using gh::docker::kOwnerLabel;
using Images = std::vector<std::string>;

namespace {

JobRules rules() {
  JobRules r;
  r.job_id = "job-1";
  r.memory_bytes = 1ull << 30;
  r.cpus = 2;
  r.network_none = true;
  return r;
}

std::string query_rule(BuildQuery q, const JobRules& r = rules()) {
  auto c = check_build_query(std::move(q), r);
  return c ? "" : c.error().rule;
}

const std::string* get(const BuildQuery& q, const std::string& k) {
  for (const auto& [key, v] : q)
    if (key == k) return &v;
  return nullptr;
}

std::string images_rule(std::string_view text) {
  auto c = dockerfile_images(text);
  return c ? "" : c.error().rule;
}

Images images(std::string_view text) {
  auto c = dockerfile_images(text);
  INFO(text << " -> " << (c ? std::string() : c.error().message));
  REQUIRE(c);
  return *c;
}

struct Entry {
  enum Type { kFile, kDir, kSymlink, kHardlink };
  Entry(std::string p, std::string c = "", Type t = kFile, std::string link_target = "")
      : path(std::move(p)), content(std::move(c)), type(t), target(std::move(link_target)) {}
  std::string path;
  std::string content;
  Type type;
  std::string target;  // of a link
};

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// A build context as the CLI would send it, in a memfd at offset 0.
int context(const std::vector<Entry>& entries, int filter = ARCHIVE_FILTER_NONE) {
  int fd = memfd_create("ctx", MFD_CLOEXEC);
  REQUIRE(fd >= 0);
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  REQUIRE(archive_write_add_filter(a, filter) == ARCHIVE_OK);
  REQUIRE(archive_write_open_fd(a, fd) == ARCHIVE_OK);
  for (const auto& e : entries) {
    struct archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, e.path.c_str());
    archive_entry_set_perm(ae, 0644);
    switch (e.type) {
      case Entry::kFile:
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_size(ae, static_cast<la_int64_t>(e.content.size()));
        break;
      case Entry::kDir: archive_entry_set_filetype(ae, AE_IFDIR); break;
      case Entry::kSymlink:
        archive_entry_set_filetype(ae, AE_IFLNK);
        archive_entry_set_symlink(ae, e.target.c_str());
        break;
      case Entry::kHardlink:
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_hardlink(ae, e.target.c_str());
        archive_entry_set_size(ae, 0);
        break;
    }
    REQUIRE(archive_write_header(a, ae) == ARCHIVE_OK);
    if (e.type == Entry::kFile && !e.content.empty())
      REQUIRE(archive_write_data(a, e.content.data(), e.content.size()) == static_cast<la_ssize_t>(e.content.size()));
    archive_entry_free(ae);
  }
  REQUIRE(archive_write_close(a) == ARCHIVE_OK);
  archive_write_free(a);
  REQUIRE(lseek(fd, 0, SEEK_SET) == 0);
  return fd;
}

gh::docker::Checked<Images> bases(const std::vector<Entry>& entries, const std::string& dockerfile = "Dockerfile",
                                  int filter = ARCHIVE_FILTER_NONE) {
  Fd fd(context(entries, filter));
  return dockerfile_bases(fd.get(), dockerfile);
}

const char* kMultiStage =
    "# syntax-free: a comment\n"
    "ARG V=1\n"
    "FROM --platform=$BUILDPLATFORM golang:1.22 AS build\n"
    "RUN go build \\\n"
    "    -o /out ./...\n"
    "FROM gh-busybox\n"
    "COPY --from=build /out /bin/app\n";

}  // namespace

TEST_CASE("build query: the CLI's query passes, rewritten") {
  // `docker build --network none --label x=y -t h2img ctx` (DOCKER_BUILDKIT=0).
  auto c = check_build_query(
      {{"dockerfile", "Dockerfile"}, {"labels", R"({"x":"y"})"}, {"networkmode", "none"}, {"t", "h2img"}, {"version", "1"}},
      rules());
  REQUIRE(c);
  CHECK(nlohmann::json::parse(*get(*c, "labels")) == nlohmann::json{{"x", "y"}, {kOwnerLabel, "job-1"}});
  CHECK(*get(*c, "networkmode") == "none");
  CHECK(*get(*c, "memory") == std::to_string(1ull << 30));
  CHECK(*get(*c, "cpuperiod") == "100000");
  CHECK(*get(*c, "cpuquota") == "200000");
  CHECK(*get(*c, "t") == "h2img");
  auto bare = check_build_query({}, rules());
  REQUIRE(bare);
  CHECK(*get(*bare, "networkmode") == "none");
  CHECK(nlohmann::json::parse(*get(*bare, "labels")) == nlohmann::json{{kOwnerLabel, "job-1"}});
  CHECK(*get(*check_build_query({{"networkmode", "default"}}, rules()), "networkmode") == "none");
  CHECK(*get(*check_build_query({{"memory", "1e9"}}, rules()), "memory") == std::to_string(1ull << 30));
  CHECK(*get(*check_build_query({{"memory", "1000000"}}, rules()), "memory") == "1000000");
  CHECK(query_rule({{"t", "a"}, {"t", "b"}}) == "");  // t is multi-valued
  CHECK(query_rule({{"outputs", "[]"}}) == "");
  CHECK(query_rule({{"cgroupparent", ""}, {"isolation", ""}, {"extrahosts", ""}}) == "");
  JobRules open = rules();
  open.network_none = false;
  CHECK(get(*check_build_query({}, open), "networkmode") == nullptr);
}

TEST_CASE("build query: one rule each") {
  CHECK(query_rule({{"Memory", "1"}}) == "unknown-key");
  CHECK(query_rule({{"foo", "1"}}) == "unknown-key");
  CHECK(query_rule({{"memory", "1"}, {"memory", "2"}}) == "query-duplicate-key");
  CHECK(query_rule({{"networkmode", "host"}}) == "build-network");
  CHECK(query_rule({{"networkmode", "bridge"}}) == "build-network");
  CHECK(query_rule({{"networkmode", "container:x"}}) == "build-network");
  CHECK(query_rule({{"remote", "https://example.com/ctx.tar"}}) == "build-remote");
  CHECK(query_rule({{"remote", ""}}) == "build-remote");
  CHECK(query_rule({{"cgroupparent", "/x"}}) == "build-cgroup-parent");
  CHECK(query_rule({{"securityopt", "seccomp=unconfined"}}) == "build-security-opt");
  CHECK(query_rule({{"extrahosts", "h:1.2.3.4"}}) == "build-extra-hosts");
  CHECK(query_rule({{"version", "2"}}) == "buildkit");
  CHECK(query_rule({{"version", "3"}}) == "build-version");
  CHECK(query_rule({{"isolation", "hyperv"}}) == "isolation");
  CHECK(query_rule({{"memory", std::to_string(2ull << 30)}}) == "memory-limit");
  CHECK(query_rule({{"cpuquota", "300000"}}) == "cpu-limit");
  CHECK(query_rule({{"cpuquota", "100000"}, {"cpuperiod", "10000"}}) == "cpu-limit");
  CHECK(query_rule({{"cpuquota", "-1"}}) == "cpu-limit");
  CHECK(query_rule({{"ulimits", R"([{"Name":"rtprio","Hard":1,"Soft":1}])"}}) == "ulimits");
  CHECK(query_rule({{"labels", R"({"org.gatehouse.job":"job-2"})"}}) == "owner-label");
  CHECK(query_rule({{"labels", R"({"a":"1","a":"2"})"}}) == "json-duplicate-key");
  CHECK(query_rule({{"labels", "{"}}) == "json-syntax");
  CHECK(query_rule({{"buildargs", R"({"BUILDKIT_SYNTAX":"evil/frontend"})"}}) == "buildkit-frontend");
  CHECK(query_rule({{"outputs", R"([{"Type":"image","Attrs":{"push":"true"}}])"}}) == "build-outputs");
  JobRules bk = rules();
  bk.buildkit = true;
  CHECK(query_rule({{"version", "2"}}, bk) == "");
  CHECK(query_rule({{"version", "2"}, {"remote", "client-session"}, {"session", "s"}}, bk) == "");
  CHECK(query_rule({{"version", "1"}, {"remote", "client-session"}}, bk) == "build-remote");
  CHECK(query_rule({{"version", "2"}, {"remote", "https://x"}}, bk) == "build-remote");
}

TEST_CASE("dockerfile_images: FROM lines, stages, flags, case") {
  CHECK(images("FROM busybox\n") == Images{"busybox"});
  CHECK(images(kMultiStage) == Images{"golang:1.22", "gh-busybox"});
  CHECK(images("from busybox as B\nFrOm b\nRUN x\n") == Images{"busybox"});
  CHECK(images("FROM scratch\nCOPY x /\n") == Images{});
  CHECK(images("FROM a AS one\nFROM b\nFROM one\nFROM a\n") == Images{"a", "b"});
  CHECK(images("FROM later\nFROM busybox AS later\n") == Images{"later", "busybox"});  // only earlier stages count
  CHECK(images("FROM busybox\nCOPY --from=0 /a /b\nCOPY --chown=1 --from=nginx:1 /a /b\n") ==
        Images{"busybox", "nginx:1"});
  CHECK(images("FROM busybox\nRUN --mount=type=bind,from=alpine:3,target=/x true\n") == Images{"busybox", "alpine:3"});
  CHECK(images("FROM busybox\nONBUILD COPY --from=evil /a /b\n") == Images{"busybox", "evil"});
  CHECK(images("FROM --platform=\"linux/amd64\" busybox\n") == Images{"busybox"});
  CHECK(images("FROM busybox\nFROM busybox\n") == Images{"busybox"});
  CHECK(images("") == Images{});
}

TEST_CASE("dockerfile_images: read as the daemon's parser reads the text") {
  CHECK(images("FROM \\\n  busybox\n") == Images{"busybox"});
  CHECK(images("FROM \\\n# a comment inside\n\n  busybox:1 \\\n  AS x\nFROM x\n") == Images{"busybox:1"});
  CHECK(images("# FROM evil\n  # FROM evil2\nFROM busybox\n") == Images{"busybox"});
  CHECK(images("\xef\xbb\xbf" "FROM busybox\r\nRUN x\r\n") == Images{"busybox"});
  CHECK(images("RUN echo \\\nFROM evil\n") == Images{});  // one RUN line to the daemon too
  CHECK(images("RUN echo \\\\\nFROM busybox\n") == Images{"busybox"});  // an escaped escape continues nothing
  CHECK(images("# escape=`\nFROM `\n  busybox\nRUN dir c:\\\nFROM alpine\n") == Images{"busybox", "alpine"});
  CHECK(images("\xc2\xa0" "FROM evil\n") == Images{"evil"});           // Go trims Unicode space
  CHECK(images("\t FROM evil \xe3\x80\x80\n") == Images{"evil"});
  CHECK(images("FROM busybox\nONBU\xc4\xb0LD COPY --from=evil /a /b\n") == Images{"busybox", "evil"});  // U+0130 lowers to i
  CHECK(images("FROM busybox\n# syntax=docker/dockerfile:1\n") == Images{"busybox"});  // not a directive there
}

TEST_CASE("dockerfile_images: refusals") {
  CHECK(images_rule("ARG IMG=busybox\nFROM $IMG\n") == "build-from-variable");
  CHECK(images_rule("FROM ${IMG:-busybox}\n") == "build-from-variable");
  CHECK(images_rule("FROM busybox\nCOPY --from=$X /a /b\n") == "build-from-variable");
  CHECK(images_rule("FROM \"busybox\"\n") == "build-from-quoting");
  CHECK(images_rule("FROM bu\\sybox\n") == "build-from-quoting");
  CHECK(images_rule("# syntax=docker/dockerfile:1\nFROM busybox\n") == "buildkit-frontend");
  CHECK(images_rule("#SYNTAX = evil/frontend\nFROM busybox\n") == "buildkit-frontend");
  CHECK(images_rule("# escape=\\\n# syntax=x\nFROM busybox\n") == "buildkit-frontend");
  CHECK(images_rule("# check=skip=all\n# syntax=x\nFROM busybox\n") == "buildkit-frontend");
  CHECK(images_rule("# escape=x\nFROM busybox\n") == "build-dockerfile");
  CHECK(images_rule("FROM a b\n") == "build-dockerfile");
  CHECK(images_rule("FROM\n") == "build-dockerfile");
  CHECK(dockerfile_images("FROM a b").error().status == 400);
}

TEST_CASE("dockerfile_bases: real tar contexts") {
  auto ok = [](gh::docker::Checked<Images> c) {
    INFO((c ? std::string() : c.error().rule + ": " + c.error().message));
    REQUIRE(c);
    return *c;
  };
  std::vector<Entry> ctx = {{"src", "", Entry::kDir}, {"src/main.go", "package main\n"}, {"Dockerfile", kMultiStage}};
  CHECK(ok(bases(ctx)) == Images{"golang:1.22", "gh-busybox"});
  CHECK(ok(bases(ctx, "")) == Images{"golang:1.22", "gh-busybox"});
  for (int filter : {ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_BZIP2, ARCHIVE_FILTER_XZ, ARCHIVE_FILTER_ZSTD}) {
    INFO("filter " << filter);
    CHECK(ok(bases(ctx, "Dockerfile", filter)) == Images{"golang:1.22", "gh-busybox"});
  }
  CHECK(ok(bases({{"./Dockerfile", "FROM alpine\n"}})) == Images{"alpine"});
  CHECK(ok(bases({{"ci/Dockerfile.ci", "FROM alpine\n"}, {"Dockerfile", "FROM busybox\n"}}, "ci/Dockerfile.ci")) ==
        Images{"alpine"});
  CHECK(ok(bases({{"ci/Dockerfile.ci", "FROM alpine\n"}}, "./ci/../ci/Dockerfile.ci")) == Images{"alpine"});
  CHECK(ok(bases({{"dockerfile", "FROM alpine\n"}})) == Images{"alpine"});  // the daemon's lower-case fallback
  CHECK_FALSE(bases({{"dockerfile", "FROM alpine\n"}}, "x/Dockerfile"));
  // Extraction overwrites: the daemon reads the last entry of the name.
  CHECK(ok(bases({{"Dockerfile", "FROM busybox\n"}, {"Dockerfile", "FROM evil\n"}})) == Images{"evil"});
}

TEST_CASE("dockerfile_bases: refusals") {
  auto rule = [](const gh::docker::Checked<Images>& c) { return c ? "" : c.error().rule; };
  CHECK(rule(bases({{"README", "x"}})) == "build-dockerfile");
  CHECK(bases({{"README", "x"}}).error().status == 400);
  CHECK(rule(bases({{"Dockerfile", "", Entry::kDir}})) == "build-dockerfile");
  CHECK(rule(bases({{"real", "FROM evil\n"}, {"Dockerfile", "", Entry::kSymlink, "real"}})) == "build-dockerfile");
  CHECK(rule(bases({{"real", "FROM evil\n"}, {"Dockerfile", "", Entry::kHardlink, "real"}})) == "build-dockerfile");
  CHECK(rule(bases({{"real/Dockerfile", "FROM evil\n"}, {"sub", "", Entry::kSymlink, "real"}}, "sub/Dockerfile")) ==
        "build-dockerfile");
  // An entry written through a symbolic link lands somewhere its name does not say.
  CHECK(rule(bases({{"Dockerfile", "FROM busybox\n"}, {"d", "", Entry::kSymlink, "."}, {"d/Dockerfile", "FROM evil\n"}})) ==
        "build-context");
  CHECK(rule(bases({{"Dockerfile", "FROM $X\n"}})) == "build-from-variable");
  CHECK(rule(bases({{"Dockerfile", "# syntax=evil\nFROM busybox\n"}}, "", ARCHIVE_FILTER_GZIP)) == "buildkit-frontend");
  auto big = bases({{"Dockerfile", "FROM busybox\n" + std::string(gh::docker::kMaxDockerfileBytes, '#')}});
  REQUIRE_FALSE(big);
  CHECK(big.error().rule == "build-dockerfile");
  CHECK(big.error().status == 413);

  // Not a tar at all: a bare Dockerfile, or a truncated archive.
  Fd text(memfd_create("ctx", MFD_CLOEXEC));
  const std::string df = "FROM busybox\n";
  REQUIRE(write(text.get(), df.data(), df.size()) == static_cast<ssize_t>(df.size()));
  REQUIRE(lseek(text.get(), 0, SEEK_SET) == 0);
  auto t = dockerfile_bases(text.get(), "Dockerfile");
  REQUIRE_FALSE(t);
  CHECK(t.error().rule == "build-context");
  CHECK(t.error().status == 400);
  Fd whole(context({{"Dockerfile", std::string(4096, '#') + "\nFROM busybox\n"}}));
  REQUIRE(ftruncate(whole.get(), 1024) == 0);  // inside the Dockerfile's data
  REQUIRE(lseek(whole.get(), 0, SEEK_SET) == 0);
  CHECK(rule(dockerfile_bases(whole.get(), "Dockerfile")) == "build-context");
}

TEST_CASE("repack_context: the daemon gets the archive the proxy read") {
  std::vector<Entry> ctx = {{"src", "", Entry::kDir},       {"src/main.go", "package main\n"},
                            {"Dockerfile", kMultiStage},    {"link", "", Entry::kSymlink, "src/main.go"},
                            {"hard", "", Entry::kHardlink, "src/main.go"}};
  for (int filter : {ARCHIVE_FILTER_NONE, ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_XZ}) {
    INFO("filter " << filter);
    Fd in(context(ctx, filter));
    auto out = gh::docker::repack_context(in.get(), 64u << 20);
    REQUIRE(out);
    // A plain tar (no compression) with every entry, in order, and the same bases.
    struct archive* a = archive_read_new();
    archive_read_support_format_tar(a);
    REQUIRE(archive_read_open_fd(a, out->fd.get(), 16384) == ARCHIVE_OK);
    std::vector<std::string> names;
    struct archive_entry* e = nullptr;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
      names.push_back(archive_entry_pathname(e));
      if (names.back() == "link") CHECK(std::string(archive_entry_symlink(e)) == "src/main.go");
      if (names.back() == "hard") CHECK(std::string(archive_entry_hardlink(e)) == "src/main.go");
    }
    CHECK(archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE);
    archive_read_free(a);
    std::string all;
    for (const auto& n : names) all += n + ",";
    CHECK(all == "src/,src/main.go,Dockerfile,link,hard,");
    REQUIRE(lseek(out->fd.get(), 0, SEEK_SET) == 0);
    auto b = dockerfile_bases(out->fd.get(), "Dockerfile");
    REQUIRE(b);
    CHECK(*b == Images{"golang:1.22", "gh-busybox"});
  }
}

TEST_CASE("repack_context: a context that unpacks past the bound is refused") {
  // 8 MiB of zeros compress to a few KiB: the bound is on what is unpacked.
  Fd in(context({{"Dockerfile", "FROM busybox\n"}, {"zeros", std::string(8u << 20, '\0')}}, ARCHIVE_FILTER_GZIP));
  auto out = gh::docker::repack_context(in.get(), 1u << 20);
  REQUIRE_FALSE(out);
  CHECK(out.error().rule == "build-context");
  CHECK(out.error().status == 413);
  Fd junk(memfd_create("junk", MFD_CLOEXEC));
  REQUIRE(write(junk.get(), "not a tar at all, not even close", 32) == 32);
  REQUIRE(lseek(junk.get(), 0, SEEK_SET) == 0);
  auto bad = gh::docker::repack_context(junk.get(), 1u << 20);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().status == 400);
}
