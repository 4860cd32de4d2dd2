# Runs INSIDE a Gatehouse job whose profile has docker: {mode: proxy}.
# Each variant sends one raw request to /var/run/docker.sock (the proxy)
# and prints "VARIANT <name> <status> <rule>", the rule taken from the
# proxy's answer. tests/integration/docker_hostile.sh compares the lines
# with what each variant must get, and asks the daemon itself whether
# anything was created. argv: the test image, a victim container name, the
# victim's id.
import io, json, socket, sys, tarfile, time

IMG, VICTIM, VICTIM_ID, IMG_ID, STOPPED_ID = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
SOCK = "/var/run/docker.sock"


def raw(data):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(SOCK)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        if not b:
            break
        out += b
    s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        plain = b""
        while body:
            size, _, rest = body.partition(b"\r\n")
            n = int(size.split(b";")[0] or b"0", 16)
            if n == 0:
                break
            plain += rest[:n]
            body = rest[n + 2:]
        body = plain
    line = head.split(b"\r\n")[0].decode(errors="replace")
    status = int(line.split()[1]) if len(line.split()) > 1 else 0
    return status, body.decode(errors="replace")


def req(method, path, body=None, ctype="application/json", extra=""):
    b = body.encode() if isinstance(body, str) else (body or b"")
    h = f"{method} {path} HTTP/1.1\r\nHost: docker\r\n{extra}"
    if body is not None:
        h += f"Content-Type: {ctype}\r\nContent-Length: {len(b)}\r\n"
    return raw(h.encode() + b"\r\n" + b)


def rule_of(body):
    i = body.find("(rule ")
    return body[i + 6:body.find(")", i)] if i >= 0 else "-"


def variant(name, result):
    status, body = result
    print(f"VARIANT {name} {status} {rule_of(body) if status >= 400 else 'ok'}", flush=True)


def create(hostconfig=None, top=None, path="/v1.41/containers/create?name=hostile-x", raw_body=None, **kw):
    if raw_body is None:
        b = {"Image": IMG, "Cmd": ["true"]}
        if hostconfig is not None:
            b["HostConfig"] = hostconfig
        if top:
            b.update(top)
        raw_body = json.dumps(b)
    return req("POST", path, raw_body, **kw)


# The control: an allowed create succeeds, so the refusals below are the
# rules at work, not a proxy that refuses everything.
variant("control-create", create({"NetworkMode": "none"}, path="/v1.41/containers/create?name=hostile-control"))

# Privileged, in every disguise.
variant("privileged", create({"Privileged": True}))
variant("privileged-unversioned", create({"Privileged": True}, path="/containers/create?name=hostile-x"))
variant("privileged-lowercase", create({"privileged": True}))
variant("privileged-uppercase", create({"PRIVILEGED": True}))
variant("privileged-duplicate", create(raw_body='{"Image":"%s","HostConfig":{"Privileged":false,"Privileged":true}}' % IMG))
variant("privileged-top-level", create(top={"Privileged": True}))
variant("securityopt-unicode-key", create(raw_body='{"Image":"%s","HostConfig":{"\u017fecurityOpt":["apparmor=unconfined"]}}' % IMG))
variant("securityopt-case-collision", create(raw_body='{"Image":"%s","HostConfig":{"SecurityOpt":null,"securityopt":["seccomp=unconfined"]}}' % IMG))
body = json.dumps({"Image": IMG, "HostConfig": {"Privileged": True}}).encode()
chunked = b"POST /v1.41/containers/create?name=hostile-x HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
chunked += b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:])
variant("privileged-chunked", raw(chunked))
variant("content-length-zero", req("POST", "/v1.41/containers/create?name=hostile-x", ""))
variant("form-body", req("POST", "/v1.41/containers/create?name=hostile-x", "HostConfig.Privileged=true",
                         ctype="application/x-www-form-urlencoded"))
variant("form-body-multipart", req("POST", "/v1.41/containers/create?name=hostile-x", "x", ctype="multipart/form-data; boundary=x"))
variant("cl-and-te", raw(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}"))

# Each refused field.
variant("cap-add", create({"CapAdd": ["SYS_ADMIN"]}))
variant("security-opt", create({"SecurityOpt": ["seccomp=unconfined"]}))
variant("masked-paths-empty", create({"MaskedPaths": []}))
variant("readonly-paths-empty", create({"ReadonlyPaths": []}))
variant("runtime", create({"Runtime": "runc-unsafe"}))
variant("network-host", create({"NetworkMode": "host"}))
variant("pid-host", create({"PidMode": "host"}))
variant("ipc-host", create({"IpcMode": "host"}))
variant("uts-host", create({"UTSMode": "host"}))
variant("userns-host", create({"UsernsMode": "host"}))
variant("cgroupns-host", create({"CgroupnsMode": "host"}))
variant("pid-container", create({"PidMode": "container:" + VICTIM}))
variant("cgroup-parent", create({"CgroupParent": "/"}))
variant("devices", create({"Devices": [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda", "CgroupPermissions": "rwm"}]}))
variant("device-cgroup-rules", create({"DeviceCgroupRules": ["a *:* rwm"]}))
variant("bind-etc", create({"Binds": ["/etc:/host-etc"]}))
variant("bind-root", create({"Binds": ["/:/host"]}))
variant("mount-bind-etc", create({"Mounts": [{"Type": "bind", "Source": "/etc", "Target": "/x"}]}))
variant("volume-driver-opts", create({"Mounts": [{"Type": "volume", "Target": "/x", "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {"type": "none", "device": "/", "o": "bind"}}}}]}))
variant("volumes-from-victim", create({"VolumesFrom": [VICTIM]}))
variant("links-victim", create({"Links": [VICTIM + ":v"]}))
variant("storage-opt", create({"StorageOpt": {"size": "1G"}}))
variant("ports", create({"PortBindings": {"80/tcp": [{"HostPort": "22"}]}}))
variant("publish-all", create({"PublishAllPorts": True}))
variant("log-driver", create({"LogConfig": {"Type": "syslog", "Config": {}}}))
variant("sysctls", create({"Sysctls": {"kernel.shm_rmid_forced": "1"}}))
variant("memory-above", create({"Memory": 64 << 30}))
variant("annotations", create({"Annotations": {"a": "b"}}))
# docker.io/library/* allows `<hex>` by name, but the daemon would resolve it
# as an id prefix of an image the patterns never named.
variant("image-id-prefix", create(top={"Image": IMG_ID.split(":")[-1][:12]}))
variant("image-not-allowed", create(top={"Image": "quay.io/evil/img:1"}))

# Endpoints never reachable.
for name, path in [("plugins", "/v1.41/plugins"), ("swarm", "/v1.41/swarm"), ("services", "/v1.41/services"),
                   ("nodes", "/v1.41/nodes"), ("secrets", "/v1.41/secrets"), ("configs", "/v1.41/configs"),
                   ("libpod", "/v1.41/libpod/info"), ("debug", "/debug/pprof/heap")]:
    variant("endpoint-" + name, req("GET", path))

# Path and query tricks.
variant("api-version-old", req("GET", "/v1.40/containers/json"))
variant("path-double-slash", req("GET", "/v1.41//containers/json"))
variant("path-dotdot", req("GET", "/v1.41/containers/../plugins"))
variant("path-encoded-slash", req("GET", "/v1.41/containers/x%2F..%2F..%2Fplugins/json"))
variant("absolute-form", req("GET", "http://docker/v1.41/plugins"))
variant("query-duplicate", req("GET", "/v1.41/containers/json?all=1&all=0"))
variant("query-semicolon", req("GET", "/v1.41/containers/json?all=1;filters=x"))

# Another job's container, by name and by id prefix.
variant("victim-stop-by-name", req("POST", f"/v1.41/containers/{VICTIM}/stop"))
variant("victim-stop-by-id-prefix", req("POST", f"/v1.41/containers/{VICTIM_ID[:12]}/stop"))
variant("victim-inspect", req("GET", f"/v1.41/containers/{VICTIM}/json"))
variant("victim-exec", req("POST", f"/v1.41/containers/{VICTIM}/exec", json.dumps({"Cmd": ["id"]})))
variant("victim-remove", req("DELETE", f"/v1.41/containers/{VICTIM_ID}?force=1"))
st, body = req("GET", "/v1.41/containers/json?all=1")
print("LISTED", "victim-visible" if VICTIM_ID in body else "victim-hidden", flush=True)

# Update of the job's own container: the same limits, and no key beyond
# the resources update takes.
variant("update-memory-above", req("POST", "/v1.41/containers/hostile-control/update", json.dumps({"Memory": 64 << 30})))
variant("update-privileged", req("POST", "/v1.41/containers/hostile-control/update", json.dumps({"Privileged": True})))
variant("update-devices", req("POST", "/v1.41/containers/hostile-control/update",
                              json.dumps({"Devices": [{"PathOnHost": "/dev/mem", "PathInContainer": "/dev/mem"}]})))
variant("update-victim", req("POST", f"/v1.41/containers/{VICTIM}/update", json.dumps({"Memory": 1 << 20})))

# Exec, build and images.
st, body = req("POST", "/v1.41/containers/hostile-control/exec", json.dumps({"Cmd": ["id"], "Privileged": True}))
variant("privileged-exec", (st, body))
variant("pull-not-allowed", req("POST", "/v1.41/images/create?fromImage=evil/miner&tag=latest"))
variant("pull-fromsrc", req("POST", "/v1.41/images/create?fromSrc=http://example.com/x.tar"))
variant("image-load", req("POST", "/v1.41/images/load", b"", ctype="application/x-tar"))
variant("build-network-host", req("POST", "/v1.41/build?networkmode=host", b"", ctype="application/x-tar"))
variant("build-remote", req("POST", "/v1.41/build?remote=http://example.com/ctx.tar", b"", ctype="application/x-tar"))
variant("build-extrahosts", req("POST", "/v1.41/build?extrahosts=a:1.2.3.4", b"", ctype="application/x-tar"))
variant("build-cgroupparent", req("POST", "/v1.41/build?cgroupparent=/", b"", ctype="application/x-tar"))

# Every refused HostConfig field in every disguise: the key as written
# (versioned, unversioned, chunked), in other case, duplicated after a
# harmless value, colliding with a harmless twin in other case, at the top
# level of the body, with a Unicode look-alike letter, and as a form body.
# Each line: MATRIX <field> <variant> <status> <rule> <want-status> <want-rule>.
FIELDS = [
    ("Privileged", True, False, "privileged"),
    ("CapAdd", ["SYS_ADMIN"], None, "cap-add"),
    ("SecurityOpt", ["seccomp=unconfined"], None, "security-opt"),
    ("MaskedPaths", [], None, "masked-paths"),
    ("ReadonlyPaths", [], None, "readonly-paths"),
    ("Runtime", "other", "", "runtime"),
    ("NetworkMode", "host", "none", "network-mode"),
    ("PidMode", "host", "", "pid-mode"),
    ("IpcMode", "host", "", "ipc-mode"),
    ("UTSMode", "host", "", "uts-mode"),
    ("UsernsMode", "host", "", "userns-mode"),
    ("CgroupnsMode", "host", "", "cgroupns-mode"),
    ("CgroupParent", "/", "", "cgroup-parent"),
    ("Devices", [{"PathOnHost": "/dev/mem", "PathInContainer": "/dev/mem", "CgroupPermissions": "rwm"}], [], "devices"),
    ("DeviceCgroupRules", ["a *:* rwm"], None, "device-cgroup-rules"),
    ("DeviceRequests", [{"Driver": "nvidia", "Count": -1}], None, "device-requests"),
    ("Binds", ["/etc:/x"], None, "bind-mount"),
    ("Mounts", [{"Type": "bind", "Source": "/", "Target": "/host"}], None, "bind-mount"),
    ("VolumesFrom", [VICTIM], None, "volumes-from"),
    ("Links", [VICTIM + ":v"], None, "links"),
    ("StorageOpt", {"size": "1G"}, None, "storage-opt"),
    ("PortBindings", {"80/tcp": [{"HostPort": "22"}]}, {}, "ports"),
    ("PublishAllPorts", True, False, "publish-all"),
    ("LogConfig", {"Type": "syslog", "Config": {}}, {"Type": "", "Config": {}}, "log-driver"),
    ("Sysctls", {"net.ipv4.ip_forward": "1"}, None, "sysctls"),
    ("Memory", 64 << 30, 0, "memory-limit"),
    ("PidsLimit", 1 << 22, 0, "pids-limit"),
    ("OomKillDisable", True, False, "oom-kill-disable"),
    ("Annotations", {"a": "b"}, None, "annotations"),
]
LOOKALIKE = {"s": "\u017f", "S": "\u017f", "k": "\u212a", "K": "\u212a"}
matrix = 0


def check(field, name, result, want_status, want_rule):
    global matrix
    status, body = result
    got_rule = rule_of(body) if status >= 400 else "ok"
    matrix += 1
    print(f"MATRIX {field} {name} {status} {got_rule} {want_status} {want_rule}", flush=True)


def chunked_create(body, path="/v1.41/containers/create?name=hostile-x"):
    b = body.encode()
    return raw(f"POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
               f"Transfer-Encoding: chunked\r\n\r\n".encode() +
               b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (5, b[:5], len(b) - 5, b[5:]))


for key, bad, harmless, rule in FIELDS:
    base = {"Image": IMG, "Cmd": ["true"]}
    hc = json.dumps(dict(base, HostConfig={key: bad}))
    check(key, "versioned", req("POST", "/v1.41/containers/create?name=hostile-x", hc), 403, rule)
    check(key, "unversioned", req("POST", "/containers/create?name=hostile-x", hc), 403, rule)
    check(key, "chunked", chunked_create(hc), 403, rule)
    check(key, "lowercase", create({key.lower(): bad}), 403, "unknown-key")
    check(key, "uppercase", create({key.upper(): bad}), 403, "unknown-key")
    dup = '{"Image":"%s","HostConfig":{"%s":%s,"%s":%s}}' % (IMG, key, json.dumps(harmless), key, json.dumps(bad))
    check(key, "duplicate", create(raw_body=dup), 400, "json-duplicate-key")
    twin = '{"Image":"%s","HostConfig":{"%s":%s,"%s":%s}}' % (IMG, key, json.dumps(harmless), key.lower(), json.dumps(bad))
    check(key, "case-collision", create(raw_body=twin), 400, "json-case-collision")
    check(key, "top-level", create(top={key: bad}), 403, "top-level-hostconfig")
    look = next((c for c in key if c in LOOKALIKE), None)
    if look:
        k2 = key.replace(look, LOOKALIKE[look], 1)
        body = '{"Image":"%s","HostConfig":{"%s":%s}}' % (IMG, k2, json.dumps(bad))
        check(key, "unicode-fold", create(raw_body=body), 400, "json-non-ascii-key")
    check(key, "form", req("POST", "/v1.41/containers/create?name=hostile-x", "HostConfig.%s=%s" % (key, json.dumps(bad)),
                           ctype="application/x-www-form-urlencoded"), 403, "form-body")
print(f"MATRIX-COUNT {matrix}", flush=True)


def context(dockerfile):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# Builds: a base the profile does not allow never reaches the daemon; an
# allowed one builds, and the job's image may not be pushed (no push
# patterns) nor named like an allowed base.
variant("build-base-not-allowed", req("POST", "/v1.41/build?t=ci.local/hostile-img:2", context("FROM quay.io/evil/base:1\n"),
                                      ctype="application/x-tar"))
variant("build-copy-from-not-allowed", req("POST", "/v1.41/build?t=ci.local/hostile-img:3",
                                           context("FROM %s\nCOPY --from=quay.io/evil/x:1 /a /a\n" % IMG),
                                           ctype="application/x-tar"))
BUILD = req("POST", "/v1.41/build?t=ci.local/hostile-img:1&networkmode=none", context("FROM %s\nRUN true\n" % IMG),
                        ctype="application/x-tar")
variant("build-ok", BUILD)
print("BUILD-OUTPUT", BUILD[1][-300:].replace("\n", " "), flush=True)
variant("push-not-allowed", req("POST", "/v1.41/images/ci.local/hostile-img:1/push?tag=1"))
variant("tag-shadows-base", req("POST", "/v1.41/images/ci.local/hostile-img:1/tag?repo=gatehouse-test/busybox&tag=latest"))
variant("build-tag-shadows-base", req("POST", "/v1.41/build?t=gatehouse-test/busybox:latest", context("FROM %s\n" % IMG),
                                      ctype="application/x-tar"))
variant("push-victim-image", req("POST", f"/v1.41/images/{IMG}/push"))
variant("delete-base-image", req("DELETE", f"/v1.41/images/{IMG}?force=1"))

# Endpoints refused whatever the profile says (this one has no buildkit).
variant("endpoint-tasks", req("GET", "/v1.41/tasks"))
variant("endpoint-checkpoints", req("GET", "/v1.41/containers/hostile-control/checkpoints"))
variant("endpoint-session", req("POST", "/v1.41/session", extra="Upgrade: h2c\r\nConnection: Upgrade\r\n"))
variant("endpoint-grpc", req("POST", "/v1.41/grpc"))
variant("endpoint-system-df", req("GET", "/v1.41/system/df"))

# A JSON body over the 1 MiB bound is refused on its length, before it is read.
variant("body-too-large", raw(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
                              b"Content-Length: 2097152\r\n\r\n{"))
# One request per connection: a privileged create smuggled after an allowed
# request on the same connection is never read, let alone forwarded.
smuggled = json.dumps({"Image": IMG, "HostConfig": {"Privileged": True}})
variant("pipelined", raw(b"GET /v1.41/version HTTP/1.1\r\nHost: docker\r\n\r\n"
                         b"POST /v1.41/containers/create?name=hostile-pipelined HTTP/1.1\r\nHost: docker\r\n"
                         b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(smuggled), smuggled.encode())))



# The daemon's own inspect (relayed) of the job's own container after all
# of the above: nothing changed it.
st, body = req("GET", "/v1.41/containers/hostile-control/json")
hc = json.loads(body).get("HostConfig", {}) if st == 200 else {}
print("CONTROL", "privileged=%s" % hc.get("Privileged"), "capadd=%s" % hc.get("CapAdd"),
      "network=%s" % hc.get("NetworkMode"), "memory=%s" % hc.get("Memory"), flush=True)
# Prune and events see only the job's own objects (last: the prune takes
# the job's own stopped control container with it).
variant("prune", req("POST", "/v1.41/containers/prune"))
# `until` a second ahead: the daemon compares whole seconds, and the job's
# own events may carry this very second.
st, body = req("GET", "/v1.41/events?since=0&until=%d" % (int(time.time()) + 1))
print("EVENTS", "victim-seen" if (VICTIM_ID[:12] in body or STOPPED_ID[:12] in body) else "victim-unseen",
      "own-seen" if "hostile-control" in body else "own-unseen", flush=True)
print("DONE", flush=True)
