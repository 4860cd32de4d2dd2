#include "docker/router.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <initializer_list>
#include <set>

#include "docker/build_rules.hpp"
#include "docker/container_rules.hpp"
#include "docker/context_repack.hpp"
#include "docker/image_ref.hpp"
#include "docker/strict_json.hpp"

namespace gh::docker {

namespace {

using Keys = std::initializer_list<std::string_view>;

std::string what(const RequestHead& h) { return h.method + " " + h.target.path(); }

Refusal unknown_endpoint(const RequestHead& h) {
  return refuse("endpoint", what(h) + " is not an endpoint the proxy forwards (docs/docker.md lists them)", 403);
}

// Query keys each endpoint accepts: the daemon ignores keys it does not
// know, but a key it learns in a later version must not slip past us.
Checked<Ok> query_keys(const RequestHead& h, Keys allowed) {
  for (const auto& [k, v] : h.target.query)
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return refuse("unknown-query", "`" + k + "` is not a query parameter of " + what(h) + " the proxy forwards" +
                                         (list.empty() ? std::string(" (it takes none)") : "; it takes: " + list));
    }
  return Ok{};
}

Checked<Ok> no_body(const RequestHead& h, RequestReader& r) {
  if (!h.has_body()) return Ok{};
  auto b = r.body();
  if (!b) return b.error();
  if (!b->empty()) return refuse("unexpected-body", what(h) + " takes no body", 400);
  return Ok{};
}

Checked<nlohmann::json> json_body(const RequestHead& h, RequestReader& r) {
  if (const std::string* ct = h.header("content-type")) {
    std::string t = ct->substr(0, ct->find(';'));
    while (!t.empty() && t.back() == ' ') t.pop_back();
    std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return static_cast<char>(tolower(c)); });
    if (t != "application/json")
      return refuse("content-type", what(h) + " takes a JSON body (Content-Type: application/json), not " + t, 400);
  }
  if (!h.has_body()) return refuse("json-syntax", what(h) + " needs a JSON body", 400);
  auto b = r.body();
  if (!b) return b.error();
  if (b->empty()) return refuse("json-syntax", what(h) + " needs a JSON body", 400);
  auto j = parse_strict(*b);
  if (!j) return j.error();
  if (!j->is_object()) return refuse("json-syntax", what(h) + " needs a JSON object", 400);
  return std::move(*j);
}

Forward bytes(const nlohmann::json& body) {
  Forward f;
  f.body = Forward::Body::Bytes;
  f.bytes = canonical(body);
  return f;
}

// A JSON body run through one of the body checks (container_rules.hpp).
template <typename Check>
Checked<Forward> checked_body(const RequestHead& h, RequestReader& r, Keys q, Check check) {
  if (auto k = query_keys(h, q); !k) return k.error();
  auto j = json_body(h, r);
  if (!j) return j.error();
  auto checked = check(std::move(*j));
  if (!checked) return checked.error();
  return bytes(*checked);
}

Checked<Forward> plain(const RequestHead& h, RequestReader& r, Keys q) {
  if (auto k = query_keys(h, q); !k) return k.error();
  if (auto b = no_body(h, r); !b) return b.error();
  return Forward{};
}

Checked<Forward> owned_list(RequestHead& h, RequestReader& r, JobObjects& o, Keys q) {
  if (auto k = query_keys(h, q); !k) return k.error();
  if (auto b = no_body(h, r); !b) return b.error();
  auto f = o.owned_filters(h.target.param("filters"));
  if (!f) return f.error();
  h.target.set_param("filters", *f);
  return Forward{};
}

// A body that only the exact keys given may hold.
Checked<Forward> small_json(const RequestHead& h, RequestReader& r, Keys keys) {
  auto j = json_body(h, r);
  if (!j) return j.error();
  if (auto k = known_keys(*j, keys, ""); !k) return k.error();
  return bytes(*j);
}

Checked<Forward> containers(RequestHead& h, RequestReader& r, JobObjects& o, const JobRules& rules) {
  auto& s = h.target.segments;
  const std::string& m = h.method;
  if (s.size() == 2 && s[1] == "json" && m == "GET") return owned_list(h, r, o, {"all", "limit", "size", "filters"});
  if (s.size() == 2 && s[1] == "prune" && m == "POST") return owned_list(h, r, o, {"filters"});
  if (s.size() == 2 && s[1] == "create" && m == "POST") {
    auto f = checked_body(h, r, {"name", "platform"},
                          [&](nlohmann::json j) { return check_container_create(std::move(j), rules, o); });
    if (f) f->remember_created = true;
    return f;
  }
  if (s.size() < 2 || s.size() > 3) return unknown_endpoint(h);
  if (s.size() == 3 && s[2] == "checkpoints")
    return refuse("checkpoints", "container checkpoints are never reachable through the proxy");
  auto id = o.container(s[1]);
  if (!id) return id.error();
  s[1] = *id;
  if (s.size() == 2) {
    if (m == "DELETE") return plain(h, r, {"v", "force"});
    return unknown_endpoint(h);
  }
  const std::string& act = s[2];
  if (m == "GET" || m == "HEAD") {
    if (act == "json") return plain(h, r, {"size"});
    if (act == "top") return plain(h, r, {"ps_args"});
    if (act == "logs") return plain(h, r, {"follow", "stdout", "stderr", "since", "until", "timestamps", "tail", "details"});
    if (act == "changes" || act == "export") return plain(h, r, {});
    if (act == "stats") return plain(h, r, {"stream", "one-shot"});
    if (act == "archive") return plain(h, r, {"path"});
    return unknown_endpoint(h);
  }
  if (m == "PUT" && act == "archive") {
    if (auto k = query_keys(h, {"path", "noOverwriteDirNonDir", "copyUIDGID"}); !k) return k.error();
    Forward f;
    f.body = Forward::Body::Stream;
    return f;
  }
  if (m != "POST") return unknown_endpoint(h);
  if (act == "resize") return plain(h, r, {"h", "w"});
  if (act == "start") return plain(h, r, {"detachKeys"});
  if (act == "stop" || act == "restart") return plain(h, r, {"t"});
  if (act == "kill") return plain(h, r, {"signal"});
  if (act == "rename") return plain(h, r, {"name"});
  if (act == "pause" || act == "unpause") return plain(h, r, {});
  if (act == "wait") return plain(h, r, {"condition"});
  if (act == "attach") {
    auto f = plain(h, r, {"detachKeys", "logs", "stream", "stdin", "stdout", "stderr"});
    if (f) f->may_hijack = true;
    return f;
  }
  if (act == "update")
    return checked_body(h, r, {}, [&](nlohmann::json j) { return check_container_update(std::move(j), rules); });
  if (act == "exec") return checked_body(h, r, {}, [](nlohmann::json j) { return check_exec_create(std::move(j)); });
  return unknown_endpoint(h);
}

Checked<Forward> execs(RequestHead& h, RequestReader& r, JobObjects& o) {
  auto& s = h.target.segments;
  if (s.size() != 3) return unknown_endpoint(h);
  auto id = o.exec(s[1]);
  if (!id) return id.error();
  s[1] = *id;
  if (h.method == "GET" && s[2] == "json") return plain(h, r, {});
  if (h.method == "POST" && s[2] == "resize") return plain(h, r, {"h", "w"});
  if (h.method == "POST" && s[2] == "start") {
    if (auto k = query_keys(h, {}); !k) return k.error();
    auto f = small_json(h, r, {"Detach", "Tty", "ConsoleSize"});
    if (f) f->may_hijack = true;
    return f;
  }
  return unknown_endpoint(h);
}

std::string join_from(const std::vector<std::string>& s, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to; ++i) out += (i == from ? "" : "/") + s[i];
  return out;
}

Checked<Forward> images(RequestHead& h, RequestReader& r, JobObjects& o, const JobRules& rules) {
  auto& s = h.target.segments;
  const std::string& m = h.method;
  if (s.size() == 2 && s[1] == "json" && m == "GET") return owned_list(h, r, o, {"all", "filters", "digests", "shared-size"});
  if (s.size() == 2 && s[1] == "prune" && m == "POST") return owned_list(h, r, o, {"filters"});
  if (s.size() == 2 && s[1] == "load") return refuse("image-load", "loading images from a tar would bypass the `images` rules; pull an allowed image or build one");
  if (s.size() == 2 && s[1] == "search") return refuse("image-search", "registry search is not reachable through the proxy");
  if (s.size() == 2 && s[1] == "get") return refuse("image-export", "export one of the job's images with GET /images/NAME/get");
  if (s.size() == 2 && s[1] == "create" && m == "POST") {
    if (auto k = query_keys(h, {"fromImage", "tag", "platform", "fromSrc", "repo", "message", "changes"}); !k) return k.error();
    if (h.target.param("fromSrc"))
      return refuse("image-import", "importing an image from a URL or a body (fromSrc) is not allowed through the proxy");
    const std::string* from = h.target.param("fromImage");
    if (!from || from->empty()) return refuse("image-pull", "POST /images/create needs fromImage", 400);
    std::string ref = *from;
    if (const std::string* tag = h.target.param("tag"); tag && !tag->empty())
      ref += (tag->rfind("sha256:", 0) == 0 ? "@" : ":") + *tag;
    if (normalise_image(ref).empty()) return refuse("image-pull", "`" + ref + "` is not an image reference", 400);
    if (!image_allowed(rules.images, ref))
      return refuse("image-pull", "pulling `" + normalise_image(ref) + "` is not allowed: the profile's docker.proxy.images " +
                                      (rules.images.empty() ? std::string("allow no pulls") : "allow only its patterns"));
    if (auto b = no_body(h, r); !b) return b.error();
    return Forward{};
  }
  if (s.size() < 2) return unknown_endpoint(h);
  if (m == "DELETE") {
    auto id = o.image(join_from(s, 1, s.size()));
    if (!id) return id.error();
    s = {"images", *id};
    return plain(h, r, {"force", "noprune"});
  }
  if (s.size() < 3) return unknown_endpoint(h);
  const std::string name = join_from(s, 1, s.size() - 1), act = s.back();
  if (m == "GET" && (act == "json" || act == "history")) {
    if (!o.image_usable(name)) return refuse("not-owned", "no such image in this job: " + name, 404);
    return plain(h, r, {});
  }
  if (m == "GET" && act == "get") {
    auto id = o.image(name);
    if (!id) return id.error();
    s = {"images", *id, "get"};
    return plain(h, r, {});
  }
  if (m == "POST" && act == "tag") {
    if (auto k = query_keys(h, {"repo", "tag"}); !k) return k.error();
    auto id = o.image(name);
    if (!id) return id.error();
    const std::string* repo = h.target.param("repo");
    const std::string* tag = h.target.param("tag");
    if (!repo || repo->empty()) return refuse("image-name", "tag needs `repo`", 400);
    auto free = o.free_image_name(*repo + (tag && !tag->empty() ? ":" + *tag : std::string()));
    if (!free) return free.error();
    s = {"images", *id, "tag"};
    return plain(h, r, {"repo", "tag"});
  }
  if (m == "POST" && act == "push") {
    if (auto k = query_keys(h, {"tag"}); !k) return k.error();
    auto id = o.image(name);
    if (!id) return id.error();
    const std::string* tag = h.target.param("tag");
    std::string dest = name + (tag && !tag->empty() ? ":" + *tag : std::string());
    if (!image_allowed(rules.push, dest))
      return refuse("image-push", "pushing to `" + normalise_image(dest) + "` is not allowed: the profile's docker.proxy.push " +
                                      (rules.push.empty() ? std::string("allow no pushes") : "allow only its patterns"));
    return plain(h, r, {"tag"});
  }
  return unknown_endpoint(h);
}

// The build context is read whole into a memfd: the Dockerfile's FROM lines
// must be checked before the daemon sees any of it, and the daemon pulls a
// missing base itself.
Checked<Forward> build(RequestHead& h, RequestReader& r, JobObjects& o, const JobRules& rules, const Limits& limits) {
  if (h.target.segments.size() != 1 || h.method != "POST") {
    if (h.target.segments.size() == 2 && (h.target.segments[1] == "prune" || h.target.segments[1] == "cancel"))
      return refuse("build-cache", "the build cache is shared by every job on the host; it is not reachable through the proxy");
    return unknown_endpoint(h);
  }
  auto q = check_build_query(h.target.query, rules);
  if (!q) return q.error();
  h.target.query = std::move(*q);
  for (const auto& [k, v] : h.target.query)
    if (k == "t") {
      auto free = o.free_image_name(v);
      if (!free) return free.error();
    }
  h.target.set_param("forcerm", "1");  // a failed build leaves no unlabelled container behind
  Forward f;
  f.body = Forward::Body::File;
  f.file = UniqueFd(memfd_create("build-context", MFD_CLOEXEC));
  if (f.file.get() < 0) return refuse("build-context", "cannot hold the build context (memfd_create failed)", 500);
  std::string piece;
  for (;;) {
    auto more = r.body_piece(piece, limits.build_context);
    if (!more) return more.error();
    if (!piece.empty() && write(f.file.get(), piece.data(), piece.size()) != static_cast<ssize_t>(piece.size()))
      return refuse("build-context", "cannot hold the build context (out of memory?)", 500);
    f.file_size += piece.size();
    if (!*more) break;
  }
  const std::string* version = h.target.param("version");
  if (version && *version == "2") return f;  // BuildKit: the Dockerfile comes over /session (rules.buildkit said so)
  if (lseek(f.file.get(), 0, SEEK_SET) != 0) return refuse("build-context", "cannot rewind the build context", 500);
  // What is checked and what the daemon reads are one archive (context_repack.hpp).
  auto repacked = repack_context(f.file.get(), limits.build_context);
  if (!repacked) return repacked.error();
  f.file = std::move(repacked->fd);
  f.file_size = repacked->size;
  h.headers.erase(std::remove_if(h.headers.begin(), h.headers.end(),
                                 [](const auto& kv) { return kv.first == "content-type"; }),
                  h.headers.end());
  h.headers.emplace_back("content-type", "application/x-tar");
  const std::string* df = h.target.param("dockerfile");
  auto bases = dockerfile_bases(f.file.get(), df && !df->empty() ? *df : "Dockerfile");
  if (!bases) return bases.error();
  for (const auto& b : *bases)
    if (!o.image_usable(b))
      return refuse("build-base", "the Dockerfile's base `" + b + "` is neither one of this job's images nor allowed by the profile's docker.proxy.images");
  if (lseek(f.file.get(), 0, SEEK_SET) != 0) return refuse("build-context", "cannot rewind the build context", 500);
  return f;
}

Checked<Forward> networks(RequestHead& h, RequestReader& r, JobObjects& o, const JobRules& rules) {
  auto& s = h.target.segments;
  const std::string& m = h.method;
  if (s.size() == 1 && m == "GET") return owned_list(h, r, o, {"filters"});
  if (s.size() == 2 && s[1] == "prune" && m == "POST") return owned_list(h, r, o, {"filters"});
  if (s.size() == 2 && s[1] == "create" && m == "POST")
    return checked_body(h, r, {}, [&](nlohmann::json j) { return check_network_create(std::move(j), rules); });
  if (s.size() < 2 || s.size() > 3) return unknown_endpoint(h);
  auto id = o.network(s[1]);
  if (!id) return id.error();
  s[1] = *id;
  if (s.size() == 2 && m == "GET") return plain(h, r, {"verbose", "scope"});
  if (s.size() == 2 && m == "DELETE") return plain(h, r, {});
  if (s.size() == 3 && m == "POST" && (s[2] == "connect" || s[2] == "disconnect")) {
    if (auto k = query_keys(h, {}); !k) return k.error();
    auto j = json_body(h, r);
    if (!j) return j.error();
    if (auto k = known_keys(*j, {"Container", "EndpointConfig", "Force"}, ""); !k) return k.error();
    auto c = j->find("Container");
    if (c == j->end() || !c->is_string()) return refuse("json-syntax", "`Container` must name a container", 400);
    auto cid = o.container(c->get<std::string>());
    if (!cid) return cid.error();
    *c = *cid;
    if (auto ep = j->find("EndpointConfig"); ep != j->end() && !ep->is_null())
      if (auto k = known_keys(*ep, {"IPAMConfig", "Links", "Aliases", "NetworkID", "EndpointID", "Gateway", "IPAddress",
                                    "IPPrefixLen", "IPv6Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "MacAddress",
                                    "DriverOpts"}, "EndpointConfig");
          !k)
        return k.error();
    return bytes(*j);
  }
  return unknown_endpoint(h);
}

Checked<Forward> volumes(RequestHead& h, RequestReader& r, JobObjects& o, const JobRules& rules) {
  auto& s = h.target.segments;
  const std::string& m = h.method;
  if (s.size() == 1 && m == "GET") return owned_list(h, r, o, {"filters"});
  if (s.size() == 2 && s[1] == "prune" && m == "POST") return owned_list(h, r, o, {"filters"});
  if (s.size() == 2 && s[1] == "create" && m == "POST")
    return checked_body(h, r, {}, [&](nlohmann::json j) { return check_volume_create(std::move(j), rules); });
  if (s.size() != 2) return unknown_endpoint(h);
  auto name = o.volume(s[1]);
  if (!name) return name.error();
  s[1] = *name;
  if (m == "GET") return plain(h, r, {});
  if (m == "DELETE") return plain(h, r, {"force"});
  return unknown_endpoint(h);
}

// Areas no job reaches, whatever the profile: each is either host-wide
// state (swarm, plugins, the build cache) or a second API (libpod).
const std::set<std::string, std::less<>> kNever = {"plugins", "swarm",   "services", "nodes", "tasks", "secrets",
                                                   "configs", "debug",   "libpod",   "system", "commit", "containers-ws"};

}  // namespace

Checked<Forward> route(RequestHead& h, RequestReader& r, JobObjects& o, const JobRules& rules, const Limits& limits) {
  const auto& s = h.target.segments;
  if (s.empty()) return unknown_endpoint(h);
  const std::string& area = s[0];
  if (kNever.count(area))
    return refuse(area, "/" + area + " is never reachable through the proxy (docs/docker.md says why)");
  if (area == "_ping" && s.size() == 1 && (h.method == "GET" || h.method == "HEAD")) return plain(h, r, {});
  if ((area == "version" || area == "info") && s.size() == 1 && h.method == "GET") return plain(h, r, {});
  if (area == "events" && s.size() == 1 && h.method == "GET") return owned_list(h, r, o, {"since", "until", "filters"});
  if (area == "containers") return containers(h, r, o, rules);
  if (area == "exec") return execs(h, r, o);
  if (area == "images") return images(h, r, o, rules);
  if (area == "build") return build(h, r, o, rules, limits);
  if (area == "networks") return networks(h, r, o, rules);
  if (area == "volumes") return volumes(h, r, o, rules);
  if (area == "distribution" && s.size() >= 3 && s.back() == "json" && h.method == "GET") {
    std::string name = join_from(s, 1, s.size() - 1);
    if (!image_allowed(rules.images, name)) return refuse("image-pull", "`" + name + "` is not an image the profile allows");
    return plain(h, r, {});
  }
  if (area == "auth" && s.size() == 1 && h.method == "POST") {
    if (rules.push.empty()) return refuse("auth", "registry login is only forwarded when the profile allows pushes");
    return small_json(h, r, {"username", "password", "auth", "email", "serveraddress", "identitytoken", "registrytoken"});
  }
  if ((area == "session" || area == "grpc") && s.size() == 1) {
    if (!rules.buildkit) return refuse("buildkit", "BuildKit (/" + area + ") is not allowed by this profile (docker.proxy.buildkit)");
    auto f = plain(h, r, {});
    if (f) f->may_hijack = true;
    return f;
  }
  return unknown_endpoint(h);
}

}  // namespace gh::docker
