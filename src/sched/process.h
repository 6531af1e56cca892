// Child processes for the scheduler: start a runner, signal it, reap it, and
// describe how it ended. Only the scheduler's monitor thread reaps (try_reap).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace pl::sched {

// A loopback TCP port that was free a moment ago (the OS picked it). Another
// process may take it before the runner binds; the runner then fails to start
// and the load reports it. Throws pl::Error when no port can be had.
int free_loopback_port();

// Starts `argv[0]` with argv; stdin is /dev/null, stdout/stderr are inherited
// (the runner's log joins the server's), no other descriptor leaks into the
// child, and the signal mask and dispositions the server may have changed
// (SIGPIPE ignored, SIGTERM blocked) are reset. Throws pl::Error.
pid_t spawn_process(const std::vector<std::string>& argv);

// Non-blocking waitpid: the wait status once the child has exited, else nullopt.
// A pid that is not our child (reaped elsewhere) counts as exited with status -1.
std::optional<int> try_reap(pid_t pid);

// "exit status 1", "signal 9 (Killed)", as Ollama words it after
// "llama runner process has terminated: ".
std::string describe_wait_status(int status);

// kill(2), ignoring a process that is already gone.
void send_signal(pid_t pid, int sig);

}  // namespace pl::sched
