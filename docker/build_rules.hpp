// Checks of POST /build: its query, and the base images its Dockerfile
// names (the daemon pulls a missing base itself, so the pull rules must be
// applied to the Dockerfile before the daemon reads it).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "docker/proxy.hpp"

struct archive;

namespace gh::docker {

using BuildQuery = std::vector<std::pair<std::string, std::string>>;

// The query of POST /build, rewritten: `labels` with the owner label
// merged in (added when absent), `networkmode` "none" when
// JobRules.network_none (added when absent), `memory` and
// `cpuquota`/`cpuperiod` set to the job's ceilings when absent (the
// build's RUN steps are containers too).
//
// Rules: "unknown-key" (a key outside the 1.41 /build parameters),
// "query-duplicate-key" (400; a single-valued key twice: the daemon reads the
// first, a check might read another), "build-network" (networkmode other
// than "", "default", "none"), "build-remote" (a remote context, fetched by
// the daemon from anywhere; only `remote=client-session` with version=2
// passes, when JobRules.buildkit, since BuildKit's CLI sends the context
// over the session that rule already allows), "build-cgroup-parent",
// "build-security-opt", "build-extra-hosts", "buildkit" (version=2 without
// JobRules.buildkit), "build-version" (400; not 1 or 2), "isolation",
// "memory-limit", "cpu-limit", "ulimits", "owner-label",
// "buildkit-frontend" (buildargs naming BUILDKIT_SYNTAX, which makes
// BuildKit fetch and run a frontend image), "build-outputs" (exporters can
// push an image past the push rules, or write where the job cannot),
// json refusals of parse_strict for labels, buildargs, ulimits, outputs.
Checked<BuildQuery> check_build_query(BuildQuery q, const JobRules& rules);

// The largest Dockerfile read; a bigger one is refused (413).
inline constexpr size_t kMaxDockerfileBytes = 4u << 20;

// The images a Dockerfile pulls, in order, each once: FROM lines (but not
// `scratch`, nor an earlier stage's name), COPY --from= values that are
// not stage names or indexes, RUN --mount=...,from=... values, and the
// same inside ONBUILD (a trigger runs in a later build this check never
// sees). The text is read the way the daemon's parser reads it: BOM,
// parser directives (escape), continuation lines, comments, flags,
// case-insensitive instructions, Go's Unicode white space.
// Rules: "build-from-variable" (an image naming $: its expansion is the
// daemon's), "build-from-quoting" (quotes or escapes in an image, which
// the daemon's word processing would rewrite), "buildkit-frontend" (a
// `# syntax=` directive: BuildKit would fetch and run that image),
// "build-dockerfile" (400; a line the daemon would refuse to parse).
Checked<std::vector<std::string>> dockerfile_images(std::string_view text);

// dockerfile_images of the Dockerfile in a build context: a tar, plain or
// gzip/bzip2/xz/zstd-compressed (what the daemon decompresses), read from
// `context_fd`'s current offset to its end (the fd is not closed; rewind
// it before forwarding). `dockerfile` is the build's dockerfile parameter
// ("" reads as "Dockerfile"); as the daemon does, a missing "Dockerfile"
// falls back to "dockerfile". The entry read is the last one of that path
// (extraction overwrites), and it must be a regular file.
// Rules (400 unless noted): "build-context" (not a readable tar, or an
// entry written through a symbolic link, which could put other bytes at
// the Dockerfile's path than the entry of that name), "build-dockerfile"
// (not found, a link, or 413 when over kMaxDockerfileBytes), and those of
// dockerfile_images.
Checked<std::vector<std::string>> dockerfile_bases(int context_fd, const std::string& dockerfile);

// The decompression filters a build context may use (those the daemon reads,
// built into libarchive; never an external program), added to a reader.
void support_context_filters(struct archive* a);

}  // namespace gh::docker
