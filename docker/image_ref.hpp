// Image references the way the daemon reads them (the distribution
// reference grammar plus Docker's normalisation), so a pattern is matched
// against the image the daemon will actually use, not against what the
// job happened to write.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gh::docker {

// The full reference: "busybox" -> "docker.io/library/busybox:latest",
// "foo/bar:1" -> "docker.io/foo/bar:1", "reg.example:5000/x/y" ->
// "reg.example:5000/x/y:latest", "index.docker.io/x" -> "docker.io/library/x:latest";
// a digest is kept ("x@sha256:<hex>" -> "docker.io/library/x@sha256:<hex>",
// no ":latest" added), as is a tag beside a digest.
//
// Returns "" for anything that is not a reference: empty, uppercase in
// the repository path, spaces, control characters, a bad tag or digest, a
// name over 255 characters, and image IDs ("sha256:<hex>", or 64 hex
// digits alone): an ID names no repository, so no pattern can allow it.
// Registry hosts keep their case, as the daemon keeps it.
std::string normalise_image(std::string_view ref);

// Whether `ref` (normalised first; an invalid reference matches nothing)
// matches one of `patterns`. Pattern syntax:
//   *   any run of characters except '/': "docker.io/library/*" allows
//       every official image, any tag or digest, but not
//       "docker.io/library/x/y";
//   **  any run of characters, '/' included: "ghcr.io/acme/**";
//   ?   one character except '/'.
// No other character is special. A pattern without any of these is
// normalised like a reference and must then equal it exactly: "busybox"
// allows "docker.io/library/busybox:latest" and no other tag. A glob
// pattern is taken as written, so it must spell the normalised form:
// "docker.io/library/busybox:*", not "busybox:*" (which matches nothing,
// as no normalised reference lacks a registry).
bool image_allowed(const std::vector<std::string>& patterns, std::string_view ref);

// The glob match above, exposed for tests.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace gh::docker
