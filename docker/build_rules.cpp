#include "docker/build_rules.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <span>

#include <nlohmann/json.hpp>

#include "docker/container_rules.hpp"
#include "docker/strict_json.hpp"

namespace gh::docker {

namespace {

using nlohmann::json;

// ---- the query ------------------------------------------------------------

// What the 1.41 daemon reads (api/server/router/build/build_routes.go).
constexpr std::string_view kBuildKeys[] = {
    "dockerfile", "t", "extrahosts", "remote", "q", "nocache", "cachefrom", "pull", "rm", "forcerm", "memory",
    "memswap", "cpushares", "cpusetcpus", "cpusetmems", "cpuperiod", "cpuquota", "buildargs", "shmsize", "squash",
    "labels", "networkmode", "platform", "target", "outputs", "version", "session", "buildid", "ulimits",
    "cgroupparent", "securityopt", "isolation"};
// Read with r.Form[key]: every value counts.
constexpr std::string_view kMultiKeys[] = {"t", "extrahosts", "securityopt"};

bool listed(std::span<const std::string_view> list, std::string_view k) {
  for (auto n : list)
    if (n == k) return true;
  return false;
}

const std::string* param(const BuildQuery& q, std::string_view k) {
  for (const auto& [key, v] : q)
    if (key == k) return &v;
  return nullptr;
}

void set_param(BuildQuery& q, std::string_view k, std::string v) {
  for (auto& [key, old] : q)
    if (key == k) {
      old = std::move(v);
      return;
    }
  q.emplace_back(std::string(k), std::move(v));
}

// httputils.Int64ValueOrZero: strconv.ParseInt, and 0 for anything it
// refuses, so "memory=1e9" means no limit to the daemon.
int64_t go_int_or_zero(const std::string* s) {
  if (!s || s->empty()) return 0;
  const char* b = s->data();
  const char* e = b + s->size();
  if (*b == '+') ++b;  // ParseInt takes a sign; from_chars only '-'
  int64_t v = 0;
  auto [p, ec] = std::from_chars(b, e, v);
  return ec == std::errc() && p == e && b != e ? v : 0;
}

std::string cpus_text(double cpus) {
  std::string s = std::to_string(cpus);
  while (s.size() > 1 && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

Checked<BuildQuery> check_build_query(BuildQuery q, const JobRules& rules) {
  std::set<std::string> seen;
  for (const auto& [k, v] : q) {
    if (!listed(kBuildKeys, k))
      return refuse("unknown-key", "`" + k + "` is not a /build query parameter the proxy knows (API " +
                                       kApiVersion + "); parameters are matched exactly, case included");
    if (!seen.insert(k).second && !listed(kMultiKeys, k))
      return refuse("query-duplicate-key", "the /build parameter `" + k + "` is given twice; give it once", 400);
    if (k == "securityopt") return refuse("build-security-opt", "security options are not set on builds");
    if (k == "extrahosts" && !v.empty())
      return refuse("build-extra-hosts", "extra host entries are not set on builds; the build's network is the job's");
  }
  const std::string* version = param(q, "version");
  std::string ver = version ? *version : "";
  if (ver != "" && ver != "1" && ver != "2")
    return refuse("build-version", "version=" + ver + " is not a builder version; 1 (classic) or 2 (BuildKit)", 400);
  if (ver == "2" && !rules.buildkit)
    return refuse("buildkit", "this job may not use BuildKit (version=2); build with the classic builder "
                              "(DOCKER_BUILDKIT=0)");
  if (const std::string* remote = param(q, "remote"))
    if (!(rules.buildkit && ver == "2" && *remote == "client-session"))
      return refuse("build-remote", "remote build contexts are refused (the daemon would fetch them itself); send "
                                    "the context in the request");
  std::string net = param(q, "networkmode") ? *param(q, "networkmode") : "";
  if (net != "" && net != "default" && net != "none")
    return refuse("build-network", "networkmode=" + net + " is refused; builds use the default network or none");
  if (rules.network_none && net != "none") set_param(q, "networkmode", "none");
  if (const std::string* cg = param(q, "cgroupparent"); cg && !cg->empty())
    return refuse("build-cgroup-parent", "cgroupparent is refused: build containers stay under the daemon's cgroup");
  if (const std::string* iso = param(q, "isolation"); iso && !iso->empty())
    return refuse("isolation", "isolation=" + *iso + " is refused: the default isolation holds");

  if (rules.memory_bytes > 0) {
    const int64_t cap = static_cast<int64_t>(
        std::min<uint64_t>(rules.memory_bytes, static_cast<uint64_t>(std::numeric_limits<int64_t>::max())));
    int64_t mem = go_int_or_zero(param(q, "memory"));
    if (mem > cap)
      return refuse("memory-limit", "memory=" + std::to_string(mem) + " is above the job's ceiling of " +
                                        std::to_string(cap) + " bytes; ask for at most that");
    if (mem <= 0) set_param(q, "memory", std::to_string(cap));
  }
  if (rules.cpus > 0) {
    int64_t quota = go_int_or_zero(param(q, "cpuquota")), period = go_int_or_zero(param(q, "cpuperiod"));
    const int64_t eff = period > 0 ? period : 100000;  // the kernel's default CFS period
    if (quota < 0 || static_cast<long double>(quota) > static_cast<long double>(rules.cpus) * eff)
      return refuse("cpu-limit", "cpuquota/cpuperiod is above the job's ceiling of " + cpus_text(rules.cpus) +
                                     " CPUs; ask for at most that");
    if (quota == 0) {
      set_param(q, "cpuperiod", std::to_string(eff));
      set_param(q, "cpuquota", std::to_string(std::llround(rules.cpus * static_cast<double>(eff))));
    }
  }

  if (const std::string* u = param(q, "ulimits"); u && !u->empty()) {
    auto j = parse_strict(*u);
    if (!j) return j.error();
    if (auto ok = check_ulimits(*j, "ulimits"); !ok) return ok.error();
  }
  if (const std::string* a = param(q, "buildargs"); a && !a->empty()) {
    auto j = parse_strict(*a);
    if (!j) return j.error();
    if (j->is_object())
      for (const auto& [k, v] : j->items())
        if (iequals_ascii(k, "BUILDKIT_SYNTAX"))
          return refuse("buildkit-frontend", "the build argument BUILDKIT_SYNTAX makes BuildKit fetch and run a "
                                             "frontend image; the builder's own Dockerfile frontend is used");
  }
  if (const std::string* o = param(q, "outputs"); o && !o->empty()) {
    auto j = parse_strict(*o);
    if (!j) return j.error();
    if (!json_unset(&*j))
      return refuse("build-outputs", "build outputs (exporters) are refused: an exporter can push past the "
                                     "profile's push rules; tag the image and push it through the proxy");
  }
  json labels = json::object();
  if (const std::string* l = param(q, "labels"); l && !l->empty()) {
    auto j = parse_strict(*l);
    if (!j) return j.error();
    labels = std::move(*j);
  }
  if (auto ok = add_owner_label(labels, rules, "labels"); !ok) return ok.error();
  set_param(q, "labels", canonical(labels));
  return q;
}

namespace {

// ---- reading a Dockerfile the way the daemon's parser reads it -------------

struct Stop {
  Refusal r;
};
[[noreturn]] void stop(std::string rule, std::string message, int status = 403) {
  throw Stop{refuse(std::move(rule), std::move(message), status)};
}

// Length of the Go white-space rune (unicode.IsSpace) at s[i], or 0. Valid
// UTF-8 encodes each rune one way, so the multi-byte ones are matched as
// bytes; an invalid sequence decodes to U+FFFD, which is not space.
size_t space_at(std::string_view s, size_t i) {
  static constexpr std::string_view kWide[] = {
      "\xc2\x85", "\xc2\xa0", "\xe1\x9a\x80", "\xe2\x80\x80", "\xe2\x80\x81", "\xe2\x80\x82", "\xe2\x80\x83",
      "\xe2\x80\x84", "\xe2\x80\x85", "\xe2\x80\x86", "\xe2\x80\x87", "\xe2\x80\x88", "\xe2\x80\x89", "\xe2\x80\x8a",
      "\xe2\x80\xa8", "\xe2\x80\xa9", "\xe2\x80\xaf", "\xe2\x81\x9f", "\xe3\x80\x80"};
  char c = s[i];
  if (c == ' ' || (c >= '\t' && c <= '\r')) return 1;
  for (auto w : kWide)
    if (s.substr(i, w.size()) == w) return w.size();
  return 0;
}

std::string_view trim_left(std::string_view s) {
  size_t i = 0;
  while (i < s.size())
    if (size_t n = space_at(s, i)) i += n;
    else break;
  return s.substr(i);
}

std::string_view trim_space(std::string_view s) {
  s = trim_left(s);
  for (bool more = true; more && !s.empty();) {
    more = false;
    for (size_t n = 1; n <= 3 && n <= s.size(); ++n)
      if (space_at(s, s.size() - n) == n) {
        s.remove_suffix(n);
        more = true;
        break;
      }
  }
  return s;
}

bool ascii_space(char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r'; }

// strings.ToLower for an instruction name: the only non-ASCII runes it
// turns into ASCII are U+0130 (-> i) and U+212A (-> k).
std::string lower_go(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.substr(i, 2) == "\xc4\xb0") {
      out += 'i';
      ++i;
    } else if (s.substr(i, 3) == "\xe2\x84\xaa") {
      out += 'k';
      i += 2;
    } else {
      char c = s[i];
      out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
  }
  return out;
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// extractBuilderFlags: leading "--..." words, quotes and backslashes
// processed, each byte read as a rune (so 0x85 and 0xA0 count as space).
std::pair<std::string_view, std::vector<std::string>> extract_flags(std::string_view line) {
  auto space = [](char c) { return ascii_space(c) || c == '\n' || c == '\x85' || c == '\xa0'; };
  std::vector<std::string> words;
  enum { kSpaces, kWord, kQuote } phase = kSpaces;
  std::string word;
  char quote = 0;
  bool blank_ok = false;
  for (size_t pos = 0; pos <= line.size(); ++pos) {
    char ch = pos < line.size() ? line[pos] : '\0';
    if (phase == kSpaces) {
      if (pos == line.size()) break;
      if (space(ch)) continue;
      if (ch != '-' || pos + 1 == line.size() || line[pos + 1] != '-') return {line.substr(pos), words};
      phase = kWord;
    }
    if (pos == line.size()) {
      if (word != "--" && (blank_ok || !word.empty())) words.push_back(word);
      break;
    }
    if (phase == kWord) {
      if (space(ch)) {
        phase = kSpaces;
        if (word == "--") return {line.substr(pos), words};
        if (blank_ok || !word.empty()) words.push_back(word);
        word.clear();
        blank_ok = false;
        continue;
      }
      if (ch == '\'' || ch == '"') {
        quote = ch;
        blank_ok = true;
        phase = kQuote;
        continue;
      }
    } else if (ch == quote) {
      phase = kWord;
      continue;
    }
    if (ch == '\\') {
      if (pos + 1 == line.size()) {
        if (phase == kQuote) phase = kWord;
        continue;
      }
      ch = line[++pos];
    }
    word += ch;
  }
  return {std::string_view(), words};
}

struct Parsed {
  std::vector<std::string> images;
  std::vector<std::string> stages;  // lower-cased names of earlier stages
};

void add_image(Parsed& p, const std::string& image, std::string_view what) {
  if (image.find('$') != std::string::npos)
    stop("build-from-variable", std::string(what) + " `" + image +
                                    "` names a variable: the proxy cannot know what it expands to; write the "
                                    "image out");
  if (image.find_first_of("\"'\\`") != std::string::npos)
    stop("build-from-quoting", std::string(what) + " `" + image +
                                   "` holds quotes or escapes, which the daemon rewrites; write the image plainly");
  for (const auto& i : p.images)
    if (i == image) return;
  p.images.push_back(image);
}

// A --from value: an earlier stage (by name or index), or an image.
void from_value(Parsed& p, const std::string& v, std::string_view what, bool onbuild) {
  int index = 0;
  const char* b = v.data() + (v.starts_with("+") ? 1 : 0);
  auto [end, ec] = std::from_chars(b, v.data() + v.size(), index);
  if (!v.empty() && ec == std::errc() && end == v.data() + v.size()) return;
  if (!onbuild)
    for (const auto& s : p.stages)
      if (s == lower_ascii(v)) return;
  add_image(p, v, what);
}

void instruction(Parsed& p, std::string_view line, bool onbuild) {
  line = trim_space(line);
  size_t cut = 0;
  while (cut < line.size() && !ascii_space(line[cut])) ++cut;
  std::string cmd = lower_go(line.substr(0, cut));
  while (cut < line.size() && ascii_space(line[cut])) ++cut;
  auto [rest, flags] = extract_flags(line.substr(cut));
  std::string_view args = trim_space(rest);
  if (cmd == "from") {
    if (onbuild) return;  // the daemon refuses FROM as a trigger
    std::vector<std::string> words;
    for (size_t i = 0; i < args.size();) {
      size_t j = i;
      while (j < args.size() && !ascii_space(args[j])) ++j;
      words.emplace_back(args.substr(i, j - i));
      while (j < args.size() && ascii_space(args[j])) ++j;
      i = j;
    }
    if (words.size() != 1 && !(words.size() == 3 && lower_ascii(words[1]) == "as"))
      stop("build-dockerfile", "`" + std::string(line) + "`: FROM takes an image and optionally AS name", 400);
    std::string image = words[0];
    bool stage = false;
    for (const auto& s : p.stages) stage = stage || s == lower_ascii(image);
    if (!stage && image != "scratch") add_image(p, image, "the base image");
    if (words.size() == 3) p.stages.push_back(lower_ascii(words[2]));
  } else if (cmd == "copy") {
    for (const auto& f : flags)
      if (f.starts_with("--from=")) from_value(p, f.substr(7), "COPY --from", onbuild);
  } else if (cmd == "run") {
    for (const auto& f : flags) {
      if (!f.starts_with("--mount=")) continue;
      std::string_view spec = std::string_view(f).substr(8);
      if (spec.find_first_of("\"'") != std::string_view::npos)
        stop("build-from-quoting", "RUN " + f + " holds quotes; write the mount plainly");
      for (size_t i = 0; i <= spec.size();) {
        size_t j = std::min(spec.find(',', i), spec.size());
        std::string_view field = spec.substr(i, j - i);
        size_t eq = field.find('=');
        if (eq != std::string_view::npos && lower_ascii(field.substr(0, eq)) == "from")
          from_value(p, std::string(field.substr(eq + 1)), "RUN --mount from", onbuild);
        i = j + 1;
      }
    }
  } else if (cmd == "onbuild" && !onbuild) {
    instruction(p, args, true);
  }
}

bool is_comment(std::string_view raw) { return trim_left(raw).starts_with("#"); }

// bytes.TrimRight(line, "\r\n")
std::string_view trim_newline(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

// The continuation regexp `([^E])E[ \t]*$|^E[ \t]*$` for escape E: the
// line without its continuation mark, or nullopt when it has none.
std::optional<std::string_view> continued(std::string_view line, char escape) {
  std::string_view t = line;
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
  if (t.empty() || t.back() != escape) return std::nullopt;
  t.remove_suffix(1);
  if (!t.empty() && t.back() == escape) return std::nullopt;
  return t;
}

}  // namespace

Checked<std::vector<std::string>> dockerfile_images(std::string_view text) {
  try {
    if (text.starts_with("\xef\xbb\xbf")) text.remove_prefix(3);
    std::vector<std::string_view> lines;
    for (size_t i = 0; i < text.size();) {
      size_t j = text.find('\n', i);
      j = j == std::string_view::npos ? text.size() : j + 1;
      lines.push_back(text.substr(i, j - i));
      i = j;
    }
    char escape = '\\';
    bool directives_done = false, unknown_seen = false;
    std::set<std::string> directives;
    // possibleParserDirective, called on every line the parser reads until
    // the first that is not a directive.
    auto directive = [&](std::string_view token) {
      if (directives_done) return;
      // ^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$, \s being [\t\n\f\r ]
      auto sp = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'; };
      size_t i = 1, n = token.size();
      if (!token.starts_with("#")) return void(directives_done = true);
      while (i < n && sp(token[i])) ++i;
      size_t k = i;
      auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
      if (i == n || !alpha(token[i])) return void(directives_done = true);
      while (i < n && (alpha(token[i]) || (token[i] >= '0' && token[i] <= '9'))) ++i;
      std::string key = lower_ascii(token.substr(k, i - k));
      while (i < n && sp(token[i])) ++i;
      if (i == n || token[i] != '=') return void(directives_done = true);
      ++i;
      while (i < n && sp(token[i])) ++i;
      size_t e = n;
      while (e > i && sp(token[e - 1])) --e;
      if (e == i) return void(directives_done = true);
      std::string value(token.substr(i, e - i));
      // The daemon's parser stops at a directive it does not know; newer
      // BuildKit frontends know more (check=), so a syntax directive after
      // one is still refused, though escape is no longer honoured.
      if (key != "escape" && key != "syntax") {
        unknown_seen = true;
        return;
      }
      if (unknown_seen && key == "escape") return void(directives_done = true);
      if (!directives.insert(key).second)
        stop("build-dockerfile", "the Dockerfile has two " + key + " parser directives", 400);
      if (key == "syntax")
        stop("buildkit-frontend", "the Dockerfile's `# syntax=" + value +
                                      "` directive makes BuildKit fetch and run that frontend image; remove it");
      if (value != "\\" && value != "`")
        stop("build-dockerfile", "the escape directive takes \\ or `, not " + value, 400);
      escape = value[0];
    };
    // processLine: the text with a leading comment removed.
    auto process = [&](std::string_view raw, bool strip_left) {
      std::string_view token = trim_newline(raw);
      if (strip_left) token = trim_left(token);
      directive(token);
      return token.starts_with("#") ? std::string_view() : token;
    };

    Parsed parsed;
    for (size_t i = 0; i < lines.size();) {
      std::string_view first = process(lines[i++], true);
      std::string line;
      bool end_of_line = true;
      if (auto c = continued(first, escape)) {
        line = std::string(*c);
        end_of_line = false;
      } else {
        line = std::string(first);
      }
      if (end_of_line && line.empty()) continue;
      while (!end_of_line && i < lines.size()) {
        std::string_view raw = lines[i++];
        std::string_view next = process(raw, false);
        if (is_comment(raw) || trim_left(next).empty()) continue;
        if (auto c = continued(next, escape)) {
          line += *c;
        } else {
          line += next;
          end_of_line = true;
        }
      }
      instruction(parsed, line, false);
    }
    return parsed.images;
  } catch (const Stop& s) {
    return s.r;
  }
}

namespace {

// ---- the build context ------------------------------------------------------

struct ArchiveFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

// Go's path.Clean of "/" + p, without the leading slash: how the daemon
// places an entry or finds the Dockerfile (a ".." cannot climb above the
// context's root).
std::string clean_rel(std::string_view p) { return clean_abs(p).substr(1); }

enum class Kind { kRegular, kLink, kOther };

struct Found {
  Kind kind = Kind::kOther;
  std::string content;
};

}  // namespace

void support_context_filters(struct archive* a) {
  // Only what the daemon decompresses, and only where libarchive has the
  // library built in: ARCHIVE_WARN means it would run an external program
  // on the job's bytes, so that filter stays off.
  for (auto add : {archive_read_support_filter_gzip, archive_read_support_filter_bzip2,
                   archive_read_support_filter_xz, archive_read_support_filter_zstd}) {
    std::unique_ptr<struct archive, ArchiveFree> probe(archive_read_new());
    if (add(probe.get()) == ARCHIVE_OK) add(a);
  }
}

Checked<std::vector<std::string>> dockerfile_bases(int context_fd, const std::string& dockerfile) {
  const std::string wanted = clean_rel(dockerfile.empty() ? "Dockerfile" : dockerfile);
  const bool fallback = dockerfile.empty() || dockerfile == "Dockerfile";
  std::unique_ptr<struct archive, ArchiveFree> a(archive_read_new());
  if (!a) return refuse("build-context", "cannot read the build context (out of memory)", 500);
  archive_read_support_format_tar(a.get());
  support_context_filters(a.get());
  if (archive_read_open_fd(a.get(), context_fd, 64 * 1024) != ARCHIVE_OK)
    return refuse("build-context", std::string("the build context is not a tar archive the daemon reads (plain, "
                                               "gzip, bzip2, xz or zstd): ") +
                                       archive_error_string(a.get()), 400);
  std::set<std::string> symlinks;  // paths that are symbolic links at this point of the extraction
  std::optional<Found> primary, lower;
  struct archive_entry* e = nullptr;
  int r;
  while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    const char* name = archive_entry_pathname(e);
    if (!name) name = archive_entry_pathname_utf8(e);
    if (!name) return refuse("build-context", "an entry of the build context has a name that cannot be read", 400);
    std::string path = clean_rel(name);
    for (size_t s = path.find('/'); s != std::string::npos; s = path.find('/', s + 1))
      if (symlinks.count(path.substr(0, s)))
        return refuse("build-context", "the build context writes " + path + " through the symbolic link " +
                                           path.substr(0, s) + "; a context the docker CLI sends never does", 400);
    bool link = archive_entry_hardlink(e) != nullptr || archive_entry_filetype(e) == AE_IFLNK;
    if (archive_entry_filetype(e) == AE_IFLNK) symlinks.insert(path);
    else symlinks.erase(path);
    std::optional<Found>* slot = path == wanted ? &primary : (fallback && path == "dockerfile") ? &lower : nullptr;
    if (!slot) continue;
    Found f;
    f.kind = link ? Kind::kLink : archive_entry_filetype(e) == AE_IFREG ? Kind::kRegular : Kind::kOther;
    if (f.kind == Kind::kRegular) {
      if (archive_entry_size_is_set(e) && archive_entry_size(e) > static_cast<la_int64_t>(kMaxDockerfileBytes))
        return refuse("build-dockerfile", "the Dockerfile " + path + " is larger than " +
                                              std::to_string(kMaxDockerfileBytes) + " bytes", 413);
      char buf[16384];
      for (la_ssize_t n; (n = archive_read_data(a.get(), buf, sizeof buf)) != 0;) {
        if (n < 0)
          return refuse("build-context", std::string("cannot read the build context: ") + archive_error_string(a.get()), 400);
        f.content.append(buf, static_cast<size_t>(n));
        if (f.content.size() > kMaxDockerfileBytes)
          return refuse("build-dockerfile", "the Dockerfile " + path + " is larger than " +
                                                std::to_string(kMaxDockerfileBytes) + " bytes", 413);
      }
    }
    *slot = std::move(f);
  }
  if (r != ARCHIVE_EOF)
    return refuse("build-context", std::string("cannot read the build context: ") + archive_error_string(a.get()), 400);
  // The daemon reads the path through any symbolic link in the context;
  // the proxy reads only entries, so a link anywhere on the path is refused.
  for (size_t s = wanted.find('/'); s != std::string::npos; s = wanted.find('/', s + 1))
    if (symlinks.count(wanted.substr(0, s)))
      return refuse("build-dockerfile", "the Dockerfile's folder " + wanted.substr(0, s) +
                                            " is a symbolic link in the build context; name the real path with -f",
                    400);
  std::optional<Found>& f = primary ? primary : lower;
  if (!f || f->kind == Kind::kOther)
    return refuse("build-dockerfile", "the build context holds no Dockerfile at " + wanted, 400);
  if (f->kind == Kind::kLink)
    return refuse("build-dockerfile", "the Dockerfile " + wanted + " is a link in the build context; the proxy "
                                      "reads only a regular file: name the real file with -f", 400);
  return dockerfile_images(f->content);
}

}  // namespace gh::docker
