// Child processes for the scheduler: start a runner, signal it, reap it, and
// describe how it ended. Only the scheduler's monitor thread reaps (try_reap).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pl::sched {

// A loopback TCP port that was free a moment ago (the OS picked it). Another
// process may take it before the runner binds; the runner then fails to start
// and the load reports it. Throws pl::Error when no port can be had.
int free_loopback_port();

// Starts `argv[0]` with argv; stdin is /dev/null, stdout is inherited, no
// other descriptor leaks into the child, and the signal mask and dispositions
// the server may have changed (SIGPIPE ignored, SIGTERM blocked) are reset.
// stderr is inherited too, unless `stderr_pipe` is given: it then gets the
// read end (non-blocking, close-on-exec) of a pipe that is the child's stderr.
// Throws pl::Error.
pid_t spawn_process(const std::vector<std::string>& argv, int* stderr_pipe = nullptr);

// A runner's stderr, read without blocking: each complete line is passed on to
// our stderr (one write per line, so the runner's log joins the server's
// without lines interleaving) and the last one that says why the runner
// failed is kept, for the "llama runner process has terminated: ..." message
// (Ollama's carries the runner's last error the same way).
class StderrRelay {
 public:
  explicit StderrRelay(int fd) : fd_(fd) {}  // takes the descriptor
  ~StderrRelay();
  StderrRelay(const StderrRelay&) = delete;
  StderrRelay& operator=(const StderrRelay&) = delete;

  // Reads what the pipe holds now. Once the child has exited everything it
  // wrote is there, so a pump() after the reap sees all of it.
  void pump();
  // The text of the last error line, or "".
  const std::string& last_error() const { return last_error_; }

 private:
  void line(std::string_view l);
  int fd_ = -1;          // -1 after end of file
  std::string partial_;  // a line not ended yet
  std::string last_error_;
};

// The error a line of the runner's stderr reports, or "" when it reports none:
// the CLI's "Error: <why>" as the process ends, an internal check failure, an
// uncaught exception.
std::string runner_error_of_line(std::string_view line);

// Non-blocking waitpid: the wait status once the child has exited, else nullopt.
// A pid that is not our child (reaped elsewhere) counts as exited with status -1.
std::optional<int> try_reap(pid_t pid);

// "exit status 1", "signal 9 (Killed)", as Ollama words it after
// "llama runner process has terminated: ".
std::string describe_wait_status(int status);

// kill(2), ignoring a process that is already gone.
void send_signal(pid_t pid, int sig);

}  // namespace pl::sched
