#include "docker/connection.hpp"

#include <poll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace gh::docker {

namespace {

void answer(int client, const Refusal& r) {
  send_all(client, refusal_answer(r));
}

bool send_file(int to, int from, uint64_t size) {
  off_t off = 0;
  while (static_cast<uint64_t>(off) < size) {
    ssize_t n = sendfile(to, from, &off, static_cast<size_t>(std::min<uint64_t>(size - static_cast<uint64_t>(off), 1u << 30)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
  }
  return true;
}

std::string chunk(std::string_view data) {
  char len[32];
  snprintf(len, sizeof len, "%zx\r\n", data.size());
  return std::string(len) + std::string(data) + "\r\n";
}

// Copies the daemon's answer to the job until the daemon closes (it was
// asked for Connection: close) or the job goes away.
void pump_answer(int up, int client) {
  char buf[65536];
  // The job may half-close its side once its request is sent and still read
  // the answer: only a full close (POLLHUP, POLLERR) means it went away.
  pollfd p[2] = {{up, POLLIN, 0}, {client, 0, 0}};
  for (;;) {
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents & (POLLHUP | POLLERR)) return;  // the job stopped listening (logs -f, events)
    if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    ssize_t n = recv(up, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || !send_all(client, std::string_view(buf, static_cast<size_t>(n)))) return;
  }
}

// Both directions, until both have ended: the job may half-close its side
// (stdin at EOF) and still read the container's output.
void pump_both(int up, int client) {
  char buf[65536];
  bool up_open = true, client_open = true;
  while (up_open) {
    pollfd p[2] = {{up, POLLIN, 0}, {client, static_cast<short>(client_open ? POLLIN : 0), 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = recv(up, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        up_open = false;
        shutdown(client, SHUT_WR);
      } else if (!send_all(client, std::string_view(buf, static_cast<size_t>(n)))) {
        return;
      }
    }
    if (client_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = recv(client, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        client_open = false;
        shutdown(up, SHUT_WR);
      } else if (!send_all(up, std::string_view(buf, static_cast<size_t>(n)))) {
        return;
      }
    }
  }
}

// The answer to a create is small ({"Id": ..., "Warnings": [...]}) and has
// a length: read it whole (into `rest`, which is forwarded as it is) and
// remember the new container's id. Anything unexpected is simply forwarded.
void remember(int up, const ResponseHead& resp, std::string& rest, OwnedIds& known) {
  if (!resp.content_length || *resp.content_length > 64 * 1024) return;
  const size_t want = static_cast<size_t>(*resp.content_length);
  char buf[8192];
  while (rest.size() < want) {
    pollfd p{up, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) return;
    ssize_t n = recv(up, buf, std::min(sizeof buf, want - rest.size()), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    rest.append(buf, static_cast<size_t>(n));
  }
  auto j = nlohmann::json::parse(rest, nullptr, false);
  if (j.is_object() && j.contains("Id") && j["Id"].is_string() && j["Id"].get<std::string>().size() == 64)
    known.add(j["Id"].get<std::string>());
}

}  // namespace

void serve_connection(int client, const ProxyContext& ctx) {
  RequestLimits rl;
  rl.max_body = ctx.limits.json_body;
  RequestReader reader(client, rl);
  auto head = reader.head();
  if (!head) {
    ctx.refused(head.error(), "(unparsed request)");
    answer(client, head.error());
    return;
  }
  const std::string request = head->method + " " + head->target.path();
  JobObjects objects(ctx.upstream, ctx.rules, ctx.known);
  auto fwd = route(*head, reader, objects, ctx.rules, ctx.limits);
  if (!fwd) {
    ctx.refused(fwd.error(), request);
    answer(client, fwd.error());
    return;
  }
  auto up = ctx.upstream.connect();
  if (!up) {
    answer(client, up.error());
    return;
  }
  ctx.track(up->get(), true);
  struct Untrack {
    const ProxyContext& c;
    int fd;
    ~Untrack() { c.track(fd, false); }
  } untrack{ctx, up->get()};

  bool sent = false;
  switch (fwd->body) {
    case Forward::Body::None:
      sent = send_all(up->get(), serialise_request_head(*head, std::nullopt, false));
      break;
    case Forward::Body::Bytes:
      sent = send_all(up->get(), serialise_request_head(*head, fwd->bytes.size(), false)) && send_all(up->get(), fwd->bytes);
      break;
    case Forward::Body::File:
      sent = send_all(up->get(), serialise_request_head(*head, fwd->file_size, false)) &&
             send_file(up->get(), fwd->file.get(), fwd->file_size);
      break;
    case Forward::Body::Stream: {
      sent = send_all(up->get(), serialise_request_head(*head, std::nullopt, true));
      std::string piece;
      while (sent) {
        auto more = reader.body_piece(piece, ctx.limits.archive_upload);
        if (!more) {
          // The daemon sees a body that never ends and drops it with the connection.
          ctx.refused(more.error(), request);
          answer(client, more.error());
          return;
        }
        if (!piece.empty()) sent = send_all(up->get(), chunk(piece));
        if (!*more) {
          sent = sent && send_all(up->get(), "0\r\n\r\n");
          break;
        }
      }
      break;
    }
  }
  if (!sent) {
    answer(client, refuse("upstream", "the Docker daemon closed the connection while " + request + " was sent", 502));
    return;
  }
  std::string rest;
  auto resp = read_response_head(up->get(), rest, std::chrono::hours(24));
  if (!resp) {
    answer(client, resp.error());
    return;
  }
  if (fwd->remember_created && resp->status == 201 && ctx.known) remember(up->get(), *resp, rest, *ctx.known);
  const bool stream = fwd->may_hijack && resp->raw_stream();
  if (!send_all(client, serialise_response_head(*resp)) || !send_all(client, rest)) return;
  if (stream) {
    // Whatever the job sent after its request (stdin it wrote early) goes first.
    std::string early = reader.take_leftover();
    if (!early.empty() && !send_all(up->get(), early)) return;
    pump_both(up->get(), client);
  } else {
    pump_answer(up->get(), client);
  }
}

}  // namespace gh::docker
