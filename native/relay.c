/*
 * tagbox-relay LISTEN_ADDR:PORT UNIX_SOCKET_PATH [MAX_CONNECTIONS]
 *
 * The sandbox's only way out: listens on TCP (127.0.0.1:3128 inside a sandbox)
 * and relays every accepted connection, byte for byte and both ways, to a new
 * connection to the session's proxy socket. One process, one thread, one epoll
 * loop, whatever the number of connections (socat forked one process per
 * connection and so ran into the sandbox's process limit).
 *
 * Readiness: it prints nothing; it is ready once its listening socket exists
 * (the agent polls /proc/net/tcp for it). It cannot listen: a message on
 * stderr, exit 1. Bad arguments: exit 2. Otherwise it runs until killed.
 *
 * Per connection and direction at most one buffer of BUF_SIZE bytes waits for
 * a slow receiver; while it waits, the sender is not read (back-pressure).
 * EOF on one side becomes shutdown(SHUT_WR) on the other once its bytes are
 * through; a connection ends when both directions have, or at once on a
 * reset or error. Beyond MAX_CONNECTIONS (default 4096) new clients are
 * accepted and closed, and so are clients the proxy socket refuses.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (64 * 1024)
#define DEFAULT_MAX_CONNECTIONS 4096
#define READS_PER_TURN 16     /* per direction, before other connections get their turn */
#define ACCEPTS_PER_TURN 64
#define ACCEPT_PAUSE_MS 100   /* after an accept error that retrying at once would not cure */

enum { CLIENT, SERVER };

struct conn;

struct side {
  struct conn *conn;
  int fd;
  /* Edge-triggered epoll: what the last event said, until EAGAIN says otherwise. */
  bool readable, writable;
  bool eof;  /* read returned 0: nothing more will come from this side */
  bool shut; /* we sent shutdown(SHUT_WR) to this side */
  bool hup;  /* this side will read nothing more (EPOLLHUP, or EPIPE on a write) */
};

struct conn {
  struct side side[2];
  /* pending[i]: bytes read from side i that side !i has not taken yet (malloc'd only while there are some) */
  struct { char *data; size_t off, len; } pending[2];
  bool connecting; /* the Unix connect is in progress: nothing moves yet */
  bool dead;
  bool queued;                 /* on the run queue: stopped with work left, to be fair to others */
  struct conn *next_run, *next_dead;
};

static int epfd, listen_fd, reserve_fd = -1;
static struct sockaddr_un proxy_addr;
static long live, max_connections = DEFAULT_MAX_CONNECTIONS;
static struct conn *run_queue, *graveyard;
static bool accept_paused;
static struct timespec accept_resume;
static char scratch[BUF_SIZE]; /* one read's worth; what the receiver does not take moves to pending */

static bool would_block(void) { return errno == EAGAIN || errno == EWOULDBLOCK; }

/* Closes a client we will not serve. Reading what it already sent first makes the close a FIN, not a reset. */
static void turn_away(int fd) {
  for (int i = 0; i < 4 && recv(fd, scratch, sizeof scratch, MSG_DONTWAIT) > 0; i++) {}
  close(fd);
}

/* Both sides close at once. The memory is freed after the current batch of events, which may still name it. */
static void finish(struct conn *c) {
  if (c->dead) return;
  c->dead = true;
  for (int i = 0; i < 2; i++) {
    close(c->side[i].fd); /* also removes it from the epoll set */
    free(c->pending[i].data);
  }
  live--;
  c->next_dead = graveyard;
  graveyard = c;
}

static void drop_pending(struct conn *c, int from) {
  free(c->pending[from].data);
  c->pending[from].data = NULL;
  c->pending[from].len = 0;
}

/* Sends pending bytes of direction `from`. Returns false on a fatal error. */
static bool flush(struct conn *c, int from) {
  struct side *dst = &c->side[!from];
  while (c->pending[from].len > 0 && dst->writable && !dst->hup) {
    ssize_t n = send(dst->fd, c->pending[from].data + c->pending[from].off, c->pending[from].len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (would_block()) { dst->writable = false; return true; }
      if (errno != EPIPE) return false;
      dst->hup = true; /* it stopped reading; what it still sends us may get through */
      break;
    }
    c->pending[from].off += (size_t)n;
    c->pending[from].len -= (size_t)n;
  }
  if (dst->hup || c->pending[from].len == 0) drop_pending(c, from);
  return true;
}

/*
 * Moves bytes of one direction until the sender has none (EAGAIN), the
 * receiver takes none (EAGAIN: bytes wait in pending and the sender is left
 * unread), or READS_PER_TURN reads (then *more is set). False: fatal error.
 */
static bool relay(struct conn *c, int from, bool *more) {
  struct side *src = &c->side[from], *dst = &c->side[!from];
  for (int reads = 0;;) {
    if (!flush(c, from)) return false;
    if (dst->hup) return true; /* nowhere to send: leave the sender unread */
    if (c->pending[from].len > 0) return true;
    if (src->eof) {
      if (!dst->shut) {
        shutdown(dst->fd, SHUT_WR); /* a failure here shows up as an event on dst */
        dst->shut = true;
      }
      return true;
    }
    if (!src->readable) return true;
    if (reads++ == READS_PER_TURN) { *more = true; return true; }
    ssize_t n = recv(src->fd, scratch, sizeof scratch, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (would_block()) { src->readable = false; return true; }
      return false; /* ECONNRESET and friends */
    }
    if (n == 0) { src->eof = true; continue; }
    ssize_t sent = 0;
    if (dst->writable) {
      sent = send(dst->fd, scratch, (size_t)n, MSG_NOSIGNAL);
      if (sent < 0) {
        if (would_block()) dst->writable = false;
        else if (errno == EPIPE) dst->hup = true;
        else if (errno != EINTR) return false;
        sent = 0;
      }
    }
    if (sent < n && !dst->hup) {
      if (!(c->pending[from].data = malloc(BUF_SIZE))) return false;
      memcpy(c->pending[from].data, scratch + sent, (size_t)(n - sent));
      c->pending[from].off = 0;
      c->pending[from].len = (size_t)(n - sent);
    }
  }
}

/*
 * A direction is over when its sender ended and the receiver has everything and
 * our FIN, or when the receiver hung up (nothing more can reach it).
 */
static bool done(const struct conn *c, int from) {
  const struct side *dst = &c->side[!from];
  return dst->hup || (c->side[from].eof && c->pending[from].len == 0 && dst->shut);
}

static void pump(struct conn *c) {
  if (c->dead || c->connecting) return;
  bool more = false;
  /* Server to client first: when the proxy answers and hangs up, its answer goes out before anything fails. */
  if (!relay(c, SERVER, &more) || !relay(c, CLIENT, &more)) { finish(c); return; }
  /* E.g. the proxy answered and hung up: over once its answer is delivered, whatever the client still sends. */
  if (done(c, CLIENT) && done(c, SERVER)) { finish(c); return; }
  if (more && !c->queued) {
    c->queued = true;
    c->next_run = run_queue;
    run_queue = c;
  }
}

static void on_event(struct side *s, uint32_t events) {
  struct conn *c = s->conn;
  if (c->dead) return;
  /* A reset or a failed connect: both sides close now, even if this one was not being read. */
  if (events & EPOLLERR) { finish(c); return; }
  if (events & EPOLLHUP) s->hup = true;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) s->readable = true;
  if (events & (EPOLLOUT | EPOLLHUP)) s->writable = true;
  if (c->connecting && s == &c->side[SERVER] && (events & (EPOLLOUT | EPOLLHUP))) {
    int error = 0;
    socklen_t length = sizeof error;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &error, &length) < 0 || error != 0 || s->hup) { finish(c); return; }
    c->connecting = false;
  }
  pump(c);
}

static bool watch(struct side *s) {
  struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = s };
  return epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev) == 0;
}

static void serve(int client) {
  int server = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (server < 0) { turn_away(client); return; }
  bool connecting = false;
  if (connect(server, (struct sockaddr *)&proxy_addr, sizeof proxy_addr) < 0) {
    /* EAGAIN: the proxy's backlog is full; ENOENT, ECONNREFUSED: no proxy. Either way the client gets a plain close. */
    if (errno != EINPROGRESS) { close(server); turn_away(client); return; }
    connecting = true;
  }
  struct conn *c = calloc(1, sizeof *c);
  if (!c) { close(server); turn_away(client); return; }
  int one = 1;
  setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* small requests go out at once */
  c->connecting = connecting;
  for (int i = 0; i < 2; i++) {
    c->side[i] = (struct side){ .conn = c, .fd = i == CLIENT ? client : server, .readable = true, .writable = true };
  }
  c->side[SERVER].writable = !connecting;
  live++;
  if (!watch(&c->side[CLIENT]) || !watch(&c->side[SERVER])) { finish(c); return; }
  pump(c); /* the flags start optimistic; EAGAIN corrects them, and the edges that follow wake us */
}

static void pause_accepting(void) {
  struct epoll_event ev = { .events = 0, .data.ptr = NULL };
  epoll_ctl(epfd, EPOLL_CTL_MOD, listen_fd, &ev);
  clock_gettime(CLOCK_MONOTONIC, &accept_resume);
  accept_resume.tv_nsec += ACCEPT_PAUSE_MS * 1000000L;
  if (accept_resume.tv_nsec >= 1000000000L) { accept_resume.tv_sec++; accept_resume.tv_nsec -= 1000000000L; }
  accept_paused = true;
}

/* Milliseconds until a paused accept resumes, or -1: not paused (or just resumed). */
static int accept_wait_ms(void) {
  if (!accept_paused) return -1;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  long ms = (accept_resume.tv_sec - now.tv_sec) * 1000L + (accept_resume.tv_nsec - now.tv_nsec) / 1000000L;
  if (ms > 0) return (int)ms + 1;
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
  epoll_ctl(epfd, EPOLL_CTL_MOD, listen_fd, &ev);
  accept_paused = false;
  return -1;
}

/* The listening socket is level-triggered: clients left in the backlog after this turn wake us again. */
static void accept_clients(void) {
  for (int i = 0; i < ACCEPTS_PER_TURN; i++) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (would_block()) return;
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue; /* that client is gone */
      if ((errno == EMFILE || errno == ENFILE) && reserve_fd >= 0) {
        /* Out of descriptors: spend the reserve one to accept and close a client, so the backlog drains instead of spinning. */
        close(reserve_fd);
        int shed = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        bool empty = shed < 0 && would_block();
        if (shed >= 0) close(shed);
        reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (reserve_fd >= 0 && empty) return;
        if (reserve_fd >= 0 && shed >= 0) continue;
      }
      pause_accepting(); /* ENOBUFS, ENOMEM, no reserve left, or something unexpected: try again shortly */
      return;
    }
    if (live >= max_connections) turn_away(fd);
    else serve(fd);
  }
}

static void run_queued(void) {
  struct conn *c = run_queue;
  run_queue = NULL;
  while (c) {
    struct conn *next = c->next_run;
    c->queued = false;
    pump(c);
    c = next;
  }
}

static void bury(void) {
  while (graveyard) {
    struct conn *next = graveyard->next_dead;
    free(graveyard);
    graveyard = next;
  }
}

static int usage(const char *why) {
  fprintf(stderr, "tagbox-relay: %s\nusage: tagbox-relay LISTEN_ADDR:PORT UNIX_SOCKET_PATH [MAX_CONNECTIONS]\n"
                  "  e.g. tagbox-relay 127.0.0.1:3128 /run/tagbox/proxy.sock\n", why);
  return 2;
}

/* "127.0.0.1:3128" or "[::1]:3128" into an address; false if it is neither. */
static bool parse_listen(const char *text, struct sockaddr_storage *addr, socklen_t *length) {
  const char *colon = strrchr(text, ':');
  if (!colon || colon == text) return false;
  char *end;
  errno = 0;
  long port = strtol(colon + 1, &end, 10);
  if (errno || *end || end == colon + 1 || port < 1 || port > 65535) return false;
  char host[INET6_ADDRSTRLEN];
  size_t host_length = (size_t)(colon - text);
  bool bracketed = text[0] == '[' && colon[-1] == ']';
  if (bracketed) { text++; host_length -= 2; }
  if (host_length >= sizeof host) return false;
  memcpy(host, text, host_length);
  host[host_length] = '\0';
  memset(addr, 0, sizeof *addr);
  struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
  if (!bracketed && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    *length = sizeof *v4;
    return true;
  }
  if (bracketed && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    *length = sizeof *v6;
    return true;
  }
  return false;
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 4) return usage("expected 2 or 3 arguments");
  struct sockaddr_storage listen_addr;
  socklen_t listen_length;
  if (!parse_listen(argv[1], &listen_addr, &listen_length)) {
    return usage("LISTEN_ADDR:PORT must be an IPv4 address or a bracketed IPv6 address, a colon and a port 1-65535");
  }
  if (argv[2][0] != '/' || strlen(argv[2]) >= sizeof proxy_addr.sun_path) {
    return usage("UNIX_SOCKET_PATH must be an absolute path shorter than 108 bytes");
  }
  proxy_addr.sun_family = AF_UNIX;
  strcpy(proxy_addr.sun_path, argv[2]);
  if (argc == 4) {
    char *end;
    errno = 0;
    max_connections = strtol(argv[3], &end, 10);
    if (errno || *end || end == argv[3] || max_connections < 1 || max_connections > 1000000) {
      return usage("MAX_CONNECTIONS must be a number from 1 to 1000000");
    }
  }

  signal(SIGPIPE, SIG_IGN); /* belt and braces: every send already says MSG_NOSIGNAL */

  /* Two descriptors per connection: take what the hard limit allows, and cap the connections to fit. */
  struct rlimit files;
  if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
    getrlimit(RLIMIT_NOFILE, &files);
    long fit = files.rlim_cur >= (rlim_t)LONG_MAX ? LONG_MAX : ((long)files.rlim_cur - 16) / 2;
    if (fit < max_connections) {
      fprintf(stderr, "tagbox-relay: the file limit (%ld) allows %ld connections, not %ld\n", (long)files.rlim_cur, fit < 1 ? 1 : fit, max_connections);
      max_connections = fit < 1 ? 1 : fit;
    }
  }

  /* Everything else first: once the socket listens, the relay is ready (that is how the agent knows). */
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    fprintf(stderr, "tagbox-relay: epoll: %s\n", strerror(errno));
    return 1;
  }
  reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  listen_fd = socket(listen_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
  if (listen_fd < 0 || setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      bind(listen_fd, (struct sockaddr *)&listen_addr, listen_length) < 0 ||
      epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &lev) < 0 || listen(listen_fd, SOMAXCONN) < 0) {
    fprintf(stderr, "tagbox-relay: cannot listen on %s: %s\n", argv[1], strerror(errno));
    return 1;
  }

  struct epoll_event events[256];
  for (;;) {
    int timeout = run_queue ? 0 : accept_wait_ms();
    int n = epoll_wait(epfd, events, 256, timeout);
    if (n < 0 && errno != EINTR) {
      fprintf(stderr, "tagbox-relay: epoll_wait: %s\n", strerror(errno));
      return 1;
    }
    for (int i = 0; i < n; i++) {
      if (events[i].data.ptr == NULL) accept_clients();
      else on_event(events[i].data.ptr, events[i].events);
    }
    run_queued();
    bury();
    if (run_queue) accept_wait_ms(); /* a busy run queue must not keep a paused accept paused forever */
  }
}
