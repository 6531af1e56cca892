#include "sched/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"

extern char** environ;

namespace pl::sched {

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("cannot pick a port for the runner: socket: {}", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) fail("cannot pick a port for the runner: {}", std::strerror(err));
  return ntohs(a.sin_port);
}

pid_t spawn_process(const std::vector<std::string>& argv_s, int* stderr_pipe) {
  PL_CHECK(!argv_s.empty(), "spawn_process needs a program");
  std::vector<char*> argv;
  for (const std::string& s : argv_s) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);

  // Close-on-exec at once: a runner another thread spawns meanwhile must not
  // hold this one's pipe open (its end of file would never come).
  int pipe_fds[2] = {-1, -1};
  if (stderr_pipe != nullptr && ::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0)
    fail("cannot start {}: pipe: {}", argv_s[0], std::strerror(errno));

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (stderr_pipe != nullptr) {
    // The child's end blocks as usual: a full pipe holds the runner back
    // rather than losing its log.
    ::fcntl(pipe_fds[1], F_SETFL, 0);
    posix_spawn_file_actions_adddup2(&fa, pipe_fds[1], 2);
  }
  // The server's sockets (its listener above all) must not stay open in a
  // runner that outlives it.
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, argv_s[0].c_str(), &fa, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  if (stderr_pipe != nullptr) {
    ::close(pipe_fds[1]);
    if (rc != 0) ::close(pipe_fds[0]);
  }
  if (rc != 0) fail("cannot start {}: {}", argv_s[0], std::strerror(rc));
  if (stderr_pipe != nullptr) {
    // Room for a burst of log lines between two reads (best effort: the
    // system may cap it).
    ::fcntl(pipe_fds[0], F_SETPIPE_SZ, 1 << 20);
    *stderr_pipe = pipe_fds[0];
  }
  return pid;
}

StderrRelay::~StderrRelay() {
  if (fd_ >= 0) ::close(fd_);
}

void StderrRelay::pump() {
  char buf[65536];
  while (fd_ >= 0) {
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n > 0) {
      partial_.append(buf, static_cast<size_t>(n));
      size_t start = 0;
      for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1)
        line(std::string_view(partial_).substr(start, nl + 1 - start));
      partial_.erase(0, start);
      if (partial_.size() > sizeof buf) {  // no line end in sight: pass it on as a line of its own
        line(partial_ + "\n");
        partial_.clear();
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    // End of file (or a broken pipe): pass on what is left.
    ::close(fd_);
    fd_ = -1;
    if (!partial_.empty()) line(partial_ + "\n");
    partial_.clear();
  }
}

void StderrRelay::line(std::string_view l) {
  std::fwrite(l.data(), 1, l.size(), stderr);
  std::fflush(stderr);
  std::string why = runner_error_of_line(l);
  if (!why.empty()) last_error_ = std::move(why);
}

std::string runner_error_of_line(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  constexpr std::string_view kCliError = "Error: ";  // src/cli/main.cpp, as the process ends
  constexpr std::string_view kCheck = "parallama: ";  // "parallama: internal check failed: ..."
  if (line.starts_with(kCliError)) return std::string(line.substr(kCliError.size()));
  if (line.starts_with(kCheck) && line.find("internal check failed") != std::string_view::npos)
    return std::string(line.substr(kCheck.size()));
  if (line.starts_with("terminate called")) return std::string(line);
  return "";
}

std::optional<int> try_reap(pid_t pid) {
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r == 0) return std::nullopt;
    if (errno == EINTR) continue;
    return -1;  // ECHILD: someone else reaped it
  }
}

std::string describe_wait_status(int status) {
  if (status == -1) return "exit status unknown (reaped elsewhere)";
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = ::strsignal(sig);
    return "signal " + std::to_string(sig) + " (" + (name ? name : "unknown") + ")";
  }
  return "wait status " + std::to_string(status);
}

void send_signal(pid_t pid, int sig) {
  if (pid > 0) ::kill(pid, sig);
}

}  // namespace pl::sched
