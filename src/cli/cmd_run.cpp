// `parallama run MODEL [PROMPT...]`, as Ollama's: a prompt or piped input gets
// one answer (piped text goes before the prompt's words); otherwise, with a
// terminal on stdin, an interactive chat with """multi-line""" messages,
// /commands, and Ctrl-C to stop an answer.
#include <CLI/CLI.hpp>

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>

#include "cli/client.h"
#include "cli/run.h"
#include "core/error.h"
#include "store/store.h"  // ollama_options, parse_parameter

namespace pl::cli {

using nlohmann::json;

namespace {

struct RunOpts {
  std::string model, keepalive, format, think;
  std::vector<std::string> words;  // the prompt, joined with spaces
  bool verbose = false, hide_thinking = false, nowordwrap = false;
};

// Set by SIGINT while the chat runs; the answer stream and the line reader
// poll it (a handler may only touch a sig_atomic_t).
volatile std::sig_atomic_t g_interrupted = 0;
void on_sigint(int) { g_interrupted = 1; }

// Thrown once a Ctrl-C has closed the request (the client's stream returned
// false): closing the connection is what cancels the generation on the server.
struct Interrupted {};

constexpr std::string_view kTripleQuote = R"(""")";

// "json", a JSON schema object, or null for none.
json format_value(const std::string& f) {
  if (f.empty()) return nullptr;
  if (f == "json") return "json";
  json schema = json::parse(f, nullptr, false);
  if (schema.is_discarded() || !schema.is_object()) fail("--format must be json or a JSON schema object, got '{}'", f);
  return schema;
}

json think_value(const std::string& t) {
  if (t == "true") return true;
  if (t == "false") return false;
  if (t == "high" || t == "medium" || t == "low") return t;
  fail("--think must be true, false, high, medium or low, got '{}'", t);
}

std::vector<std::string> fields(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::string join(const std::vector<std::string>& words, const char* sep) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) out += (i ? sep : "") + words[i];
  return out;
}

void print_stats(const json& last) {
  auto dur = [](const json& j, const char* k) { return j.value(k, int64_t{0}) / 1e9; };
  const int pe = last.value("prompt_eval_count", 0), ev = last.value("eval_count", 0);
  std::fprintf(stderr, "total duration:       %.3fs\nload duration:        %.3fs\n", dur(last, "total_duration"),
               dur(last, "load_duration"));
  std::fprintf(stderr, "prompt eval count:    %d token(s)\nprompt eval duration: %.3fs\n", pe,
               dur(last, "prompt_eval_duration"));
  if (dur(last, "prompt_eval_duration") > 0)
    std::fprintf(stderr, "prompt eval rate:     %.2f tokens/s\n", pe / dur(last, "prompt_eval_duration"));
  std::fprintf(stderr, "eval count:           %d token(s)\neval duration:        %.3fs\n", ev,
               dur(last, "eval_duration"));
  if (dur(last, "eval_duration") > 0)
    std::fprintf(stderr, "eval rate:            %.2f tokens/s\n", ev / dur(last, "eval_duration"));
}

void put(std::string_view s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

struct Answer {
  std::string content;
  json last;  // the final object, with the timings
};

// Prints an answer (/api/generate or /api/chat) as it streams, its thinking
// first unless hidden. With `cancellable`, a Ctrl-C closes the request at once
// (queued, in prefill or streaming) and throws Interrupted.
Answer stream_answer(const ApiClient& api, const std::string& path, const json& body, bool hide_thinking,
                     bool cancellable) {
  const bool chat = path == "/api/chat";
  Answer a;
  bool in_thinking = false;
  std::function<bool()> stop;
  if (cancellable) stop = [] { return g_interrupted != 0; };
  const bool completed = api.stream(path, body, [&](const json& j) {
    const json m = chat ? j.value("message", json::object()) : j;
    const std::string thinking = m.value("thinking", "");
    const std::string piece = m.value(chat ? "content" : "response", "");
    if (!thinking.empty() && !hide_thinking) {
      if (!in_thinking) put("Thinking...\n");
      in_thinking = true;
      put(thinking);
    }
    if (!piece.empty() && in_thinking) {
      put("\n...done thinking.\n\n");
      in_thinking = false;
    }
    put(piece);
    a.content += piece;
    if (j.value("done", false)) a.last = j;
  }, stop);
  if (!completed) throw Interrupted{};
  return a;
}

enum class Input { line, interrupted, eof };

// Reads stdin a line at a time with read(2), not std::cin: a Ctrl-C must end
// the wait, and would leave a stream in a failed state. SIGINT is unblocked
// only inside ppoll, so one that arrives just before the wait is not lost.
class LineReader {
 public:
  Input next(std::string& line) {
    for (;;) {
      if (size_t nl = buf_.find('\n'); nl != std::string::npos) {
        line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return Input::line;
      }
      if (eof_) {
        if (buf_.empty()) return Input::eof;
        line = std::exchange(buf_, {});
        return Input::line;
      }
      sigset_t sigint, old;
      sigemptyset(&sigint);
      sigaddset(&sigint, SIGINT);
      sigprocmask(SIG_BLOCK, &sigint, &old);
      sigset_t waiting = old;
      sigdelset(&waiting, SIGINT);
      pollfd p{STDIN_FILENO, POLLIN, 0};
      const int r = g_interrupted ? 0 : ppoll(&p, 1, nullptr, &waiting);
      const int err = errno;
      sigprocmask(SIG_SETMASK, &old, nullptr);
      if (g_interrupted) {
        g_interrupted = 0;
        buf_.clear();  // the terminal drops the typed line on Ctrl-C too
        return Input::interrupted;
      }
      if (r < 0) {
        if (err == EINTR) continue;
        fail("cannot wait for input: {}", std::strerror(err));
      }
      char chunk[4096];
      const ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {  // EIO: the terminal went away, which ends the chat like Ctrl-D
        eof_ = true;
      } else {
        buf_.append(chunk, static_cast<size_t>(n));
      }
    }
  }

 private:
  std::string buf_;  // bytes read past the last line returned
  bool eof_ = false;
};

// Installs the chat's SIGINT handler for its lifetime and restores the old one.
class SigintGuard {
 public:
  SigintGuard() {
    struct sigaction sa = {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;  // ppoll is never restarted, so the reader still sees it
    sigaction(SIGINT, &sa, &old_);
  }
  ~SigintGuard() { sigaction(SIGINT, &old_, nullptr); }
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;

 private:
  struct sigaction old_ = {};
};

void print_help(const std::string& topic) {
  if (topic == "set") {
    put("Available Commands:\n"
        "  /set parameter NAME VALUE   Set an option for the following answers (/set parameter lists them)\n"
        "  /set system TEXT            Set the system message\n"
        "  /set format json            Answer in JSON\n"
        "  /set noformat               Answer in free text\n"
        "  /set verbose                Print timings after each answer\n"
        "  /set quiet                  Do not print timings\n"
        "  /set think | nothink        Ask the model to think, or not\n"
        "  /set wordwrap | nowordwrap  Accepted: parallama does not wrap words\n\n");
  } else if (topic == "show") {
    put("Available Commands:\n"
        "  /show info         The model's details\n"
        "  /show modelfile    Its Modelfile\n"
        "  /show parameters   Its parameters, after the session's\n"
        "  /show system       The system message\n"
        "  /show template     The prompt template\n"
        "  /show license      The license\n\n");
  } else {
    put("Available Commands:\n"
        "  /set            Set a session variable (/? set)\n"
        "  /show           Show the model's information (/? show)\n"
        "  /load MODEL     Switch to another model (clears the context)\n"
        "  /save MODEL     Save the session as a new model\n"
        "  /clear          Clear the session context\n"
        "  /bye            Exit\n"
        "  /?, /help       This help\n\n"
        "Use \"\"\" to begin a multi-line message. Ctrl-C stops an answer, Ctrl-D exits.\n\n");
  }
}

void print_parameter_help() {
  put("Available Parameters:\n");
  for (const auto& [name, opt] : store::ollama_options())
    if (opt.effective) std::printf("  /set parameter %-18s %s\n", name.c_str(), store::option_type_name(opt.type));
  put("\n");
}

// The interactive chat: what the user has set, and the conversation so far.
class Chat {
 public:
  Chat(ApiClient api, const RunOpts& o, json base) : api_(std::move(api)), o_(o), base_(std::move(base)) {}

  void loop() {
    SigintGuard guard;
    LineReader in;
    std::string message;  // a """multi-line""" message so far
    bool multiline = false;
    for (;;) {
      put(multiline ? "... " : ">>> ");
      std::string line;
      const Input r = in.next(line);
      if (r == Input::eof) {
        put("\n");
        return;
      }
      if (r == Input::interrupted) {
        put("\nUse Ctrl + d or /bye to exit.\n");
        multiline = false;
        message.clear();
        continue;
      }
      if (multiline) {  // Ollama's rule: the message ends at a line ending with """
        const bool last = line.ends_with(kTripleQuote);
        message += last ? line.substr(0, line.size() - kTripleQuote.size()) : line + "\n";
        if (!last) continue;
        multiline = false;
      } else if (line.starts_with(kTripleQuote)) {
        std::string rest = line.substr(kTripleQuote.size());
        if (!rest.ends_with(kTripleQuote)) {
          message = rest + "\n";
          multiline = true;
          continue;
        }
        message = rest.substr(0, rest.size() - kTripleQuote.size());
      } else if (line.starts_with('/')) {
        if (!command(line)) return;
        continue;
      } else {
        message = line;
      }
      if (message.find_first_not_of(" \t\r\n") != std::string::npos) send(message);
      message.clear();
    }
  }

 private:
  json messages_with_system() const {
    json all = json::array();
    if (!system_.empty()) all.push_back(json{{"role", "system"}, {"content", system_}});
    for (const json& m : messages_) all.push_back(m);
    return all;
  }

  void send(const std::string& content) {
    messages_.push_back(json{{"role", "user"}, {"content", content}});
    json body = base_;
    body["messages"] = messages_with_system();
    if (!options_.empty()) body["options"] = options_;
    g_interrupted = 0;
    try {
      Answer a = stream_answer(api_, "/api/chat", body, o_.hide_thinking, true);
      put("\n\n");
      if (verbose_) print_stats(a.last);
      messages_.push_back(json{{"role", "assistant"}, {"content", a.content}});
    } catch (const Interrupted&) {
      put("\n");  // as Ollama, the question stays in the context, unanswered
    }
  }

  // false: leave the chat.
  bool command(const std::string& line) {
    const std::vector<std::string> args = fields(line);
    const std::string& cmd = args[0];
    const std::string arg = args.size() > 1 ? args[1] : "";
    if (cmd == "/bye" || cmd == "/exit") return false;
    try {
      if (cmd == "/?" || cmd == "/help") {
        print_help(arg);
      } else if (cmd == "/clear") {
        messages_ = json::array();
        put("Cleared session context\n");
      } else if (cmd == "/set") {
        set(line, args);
      } else if (cmd == "/show") {
        show(arg);
      } else if (cmd == "/load" && !arg.empty()) {
        api_.call("POST", "/api/show", json{{"model", arg}});
        std::printf("Loading model '%s'\n", arg.c_str());
        o_.model = arg;
        base_["model"] = arg;
        messages_ = json::array();
        json load{{"model", arg}};
        if (base_.contains("keep_alive")) load["keep_alive"] = base_["keep_alive"];
        api_.call("POST", "/api/generate", load);
      } else if (cmd == "/save" && !arg.empty()) {
        save(arg);
      } else if (cmd == "/load" || cmd == "/save") {
        std::printf("Usage:\n  %s MODEL\n", cmd.c_str());
      } else {
        std::printf("Unknown command '%s'. Type /? for help\n", cmd.c_str());
      }
    } catch (const Error& e) {  // a server's refusal ends the command, not the chat
      std::printf("error: %s\n", e.what());
    }
    std::fflush(stdout);
    return true;
  }

  void set(const std::string& line, const std::vector<std::string>& args) {
    const std::string what = args.size() > 1 ? args[1] : "";
    if (what == "parameter") {
      if (args.size() < 4) return print_parameter_help();
      const std::string& name = args[2];
      json value;
      try {
        for (size_t i = 3; i < args.size(); ++i) {
          json v = store::parse_parameter(name, args[i]);
          if (v.is_array() && value.is_array()) {
            value.insert(value.end(), v.begin(), v.end());  // stop a b c: three stop strings
          } else if (value.is_null()) {
            value = v;
          } else {
            fail("parameter '{}' takes one value", name);
          }
        }
      } catch (const Error& e) {
        std::printf("Couldn't set parameter: %s\n", e.what());
        return;
      }
      options_[name] = value;
      const std::vector<std::string> values(args.begin() + 3, args.end());
      std::printf("Set parameter '%s' to '%s'\n", name.c_str(), join(values, ", ").c_str());
    } else if (what == "system" && args.size() > 2) {
      std::string text = line.substr(line.find("system") + 6);
      text.erase(0, text.find_first_not_of(" \t"));
      for (std::string_view q : {kTripleQuote, std::string_view("\"")})
        if (text.size() >= 2 * q.size() && text.starts_with(q) && text.ends_with(q)) {
          text = text.substr(q.size(), text.size() - 2 * q.size());
          break;
        }
      system_ = text;
      put("Set system message.\n");
    } else if (what == "format" && args.size() > 2 && args[2] == "json") {
      base_["format"] = "json";
      put("Set format to 'json' mode.\n");
    } else if (what == "noformat") {
      base_.erase("format");
      put("Disabled format.\n");
    } else if (what == "verbose" || what == "quiet") {
      verbose_ = what == "verbose";
      std::printf("Set '%s' mode.\n", what.c_str());
    } else if (what == "think" || what == "nothink") {
      base_["think"] = what == "think";
      std::printf("Set '%s' mode.\n", what.c_str());
    } else if (what == "wordwrap" || what == "nowordwrap") {
      std::printf("Set '%s' mode.\n", what.c_str());
    } else {
      print_help("set");
    }
  }

  void show(const std::string& what) {
    if (what == "info") return show_model(o_.model, "");
    if (what == "system" && !system_.empty()) return (void)std::printf("%s\n", system_.c_str());
    if (what == "parameters" && !options_.empty()) {
      put("User defined parameters:\n");
      for (const auto& [name, v] : options_.items()) std::printf("%-30s %s\n", name.c_str(), v.dump().c_str());
      put("\nModel defined parameters:\n");
    }
    if (what == "modelfile" || what == "parameters" || what == "system" || what == "template" || what == "license")
      return show_model(o_.model, what);
    print_help("show");
  }

  // As Ollama's /save: a new model from this one with the session's system
  // message, parameters and messages.
  void save(const std::string& name) {
    json body{{"model", name}, {"from", o_.model}};
    if (!system_.empty()) body["system"] = system_;
    if (!options_.empty()) body["parameters"] = options_;
    if (!messages_.empty()) body["messages"] = messages_;
    api_.stream("/api/create", body, [](const json&) {});
    std::printf("Created new model '%s'\n", name.c_str());
  }

  ApiClient api_;
  RunOpts o_;
  json base_;                        // model, keep_alive, format, think
  json options_ = json::object();    // from /set parameter
  json messages_ = json::array();    // the conversation, without the system message
  std::string system_;               // from /set system
  bool verbose_ = o_.verbose;
};

void run(const RunOpts& o) {
  ApiClient api = ApiClient::from_env();
  json base{{"model", o.model}};
  if (!o.keepalive.empty()) base["keep_alive"] = o.keepalive;
  if (json f = format_value(o.format); !f.is_null()) base["format"] = f;
  if (!o.think.empty()) base["think"] = think_value(o.think);
  api.call("POST", "/api/show", json{{"model", o.model}});  // a clear "model not found" before anything else

  // As Ollama: input that is not a terminal is read whole and goes before the
  // prompt's words (`cat notes.txt | parallama run m Summarize:`).
  std::vector<std::string> parts = o.words;
  const bool piped = !isatty(STDIN_FILENO);
  if (piped) {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    if (!ss.str().empty()) parts.insert(parts.begin(), ss.str());
  }
  if (piped || !parts.empty()) {
    json body = base;
    body["prompt"] = join(parts, " ");
    const Answer a = stream_answer(api, "/api/generate", body, o.hide_thinking, false);
    put("\n");
    if (o.verbose) print_stats(a.last);
    return;
  }
  json load{{"model", o.model}};
  if (base.contains("keep_alive")) load["keep_alive"] = base["keep_alive"];
  api.call("POST", "/api/generate", load);
  std::fprintf(stderr, "Send a message (/? for help, /bye to quit)\n");
  Chat(std::move(api), o, base).loop();
}

}  // namespace

void register_run(CLI::App& app) {
  auto o = std::make_shared<RunOpts>();
  auto* cmd = app.add_subcommand("run", "Run a model: a one-shot answer with PROMPT or piped input, else a chat");
  cmd->add_option("model", o->model, "Model name")->required();
  cmd->add_option("prompt", o->words, "Prompt (words are joined with spaces; piped input goes before them)");
  cmd->add_flag("--verbose", o->verbose, "Print timings after each answer");
  cmd->add_option("--keepalive", o->keepalive, "How long the model stays loaded (e.g. 5m, 0, -1)");
  cmd->add_option("--format", o->format, "Response format: json, or a JSON schema");
  cmd->add_flag("--think", o->think, "Ask the model to think (LEVEL: true, false, high, medium or low)")
      ->option_text("[=LEVEL]");
  cmd->add_flag("--hidethinking", o->hide_thinking, "Do not print the model's thinking");
  cmd->add_flag("--nowordwrap", o->nowordwrap, "Accepted for Ollama's scripts: parallama never wraps words");
  cmd->callback([o] { run(*o); });
}

}  // namespace pl::cli
