#include "sandbox/plan_codec.hpp"

#include <cstring>

namespace gh::sandbox {

namespace {

constexpr size_t kPath = 4096;
constexpr size_t kMaxEntries = 4096;
constexpr size_t kMaxFileBytes = 1u << 20;

template <class C>
void path(C& c, std::string& s) {
  c.str(s, kPath);
  if constexpr (C::kDecoding) c.require(s.find('\0') == std::string::npos, "a path with a NUL byte");
}

template <class C>
void plan_fields(C& c, SandboxPlan& p) {
  c.u32(p.host_uid);
  c.u32(p.host_gid);
  c.u32(p.job_uid);
  c.u32(p.job_gid);
  c.boolean(p.root_in_namespace);
  c.list(p.supplementary_gids, 16, [&](uint32_t& g) { c.u32(g); });
  c.str(p.hostname, 64);
  c.boolean(p.host_network);
  path(c, p.root_dir);
  c.list(p.links, kMaxEntries, [&](std::pair<std::string, std::string>& l) {
    path(c, l.first);
    path(c, l.second);
  });
  c.list(p.binds, kMaxEntries, [&](Bind& b) {
    path(c, b.host);
    path(c, b.target);
    c.boolean(b.writable);
    c.boolean(b.is_dir);
  });
  c.list(p.etc_files, 256, [&](EtcFile& f) {
    path(c, f.name);
    c.str(f.content, kMaxFileBytes);
  });
  c.list(p.hidden, kMaxEntries, [&](std::string& h) { path(c, h); });
  c.boolean(p.overlay_root);
  c.u64(p.overlay_bytes);
  c.list(p.secret_files, 64, [&](SecretFile& f) {
    path(c, f.name);
    c.str(f.content, 64 * 1024);
  });
  path(c, p.home);
  c.u64(p.home_bytes);
  c.u64(p.tmp_bytes);
  c.u64(p.shm_bytes);
  c.list(p.rlimits, 16, [&](Rlimit& r) {
    c.i32(r.resource);
    c.u64(r.soft);
    c.u64(r.hard);
  });
  // The compiled filter: whole instructions, at most BPF_MAXINSNS.
  std::string bpf;
  if constexpr (!C::kDecoding)
    bpf.assign(reinterpret_cast<const char*>(p.seccomp.insns.data()), p.seccomp.insns.size() * sizeof(sock_filter));
  c.str(bpf, 4096 * sizeof(sock_filter));
  if constexpr (C::kDecoding) {
    c.require(!bpf.empty() && bpf.size() % sizeof(sock_filter) == 0, "a seccomp filter that is not whole instructions");
    p.seccomp.insns.resize(bpf.size() / sizeof(sock_filter));
    if (!bpf.empty()) memcpy(p.seccomp.insns.data(), bpf.data(), bpf.size());
  }
  c.list(p.landlock.rules, kMaxEntries, [&](LandlockRule& r) {
    path(c, r.path);
    c.boolean(r.write);
    c.boolean(r.execute);
  });
  c.boolean(p.require_landlock);
  path(c, p.worker_host_path);
  path(c, p.entry_host_path);
}

}  // namespace

void fields(ipc::Encoder& c, SandboxPlan& p) { plan_fields(c, p); }
void fields(ipc::Decoder& c, SandboxPlan& p) { plan_fields(c, p); }

}  // namespace gh::sandbox
