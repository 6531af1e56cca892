// `parallama bench MODEL`: sweeps one model's parallel limit on a live server.
//
// For each level it sets the limit through the admin API (POST /api/parallel),
// keeps exactly that many streaming /api/generate requests in flight back to
// back for --duration, and measures what a client sees: time to first token,
// the gaps between streamed tokens and the tokens received per second. The
// window is cut at the deadline (in-flight requests are cancelled and their
// tokens so far count), so every level is measured over the same wall time.
// The model's previous limit is restored at the end, also after Ctrl-C.
#include <CLI/CLI.hpp>
#include <httplib.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "cli/bench_report.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "core/env.h"
#include "core/error.h"
#include "sched/sched.h"

namespace pl::cli {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// Set by SIGINT: the sweep stops, the limit is restored, partial results are reported.
std::atomic<bool> g_interrupted{false};
void on_sigint(int) {
  g_interrupted.store(true);
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once
}

struct BenchOpts {
  std::string model;
  std::string parallel = "1,2,4,8,16";
  int prompt_tokens = 128;
  int gen_tokens = 128;
  std::string duration = "60s";
  std::string max_itl = "200ms";
  bool json_out = false;
  std::string svg;
  int warmup = 1;
};

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
double millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::vector<int> parse_levels(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 1 || v > 1024)
      fail("--parallel: '{}' is not a level between 1 and 1024 (expected e.g. 1,2,4,8,16)", item);
    out.push_back(static_cast<int>(v));
  }
  if (out.empty()) fail("--parallel: no levels given");
  return out;
}

// ---- HTTP to the server, keeping the status (the admin API's 400/404 mean different things)

struct Answer {
  int status = 0;  // 0: no connection
  json body;
  std::string error() const {
    if (body.is_object() && body.contains("error") && body["error"].is_string()) return body["error"];
    return status == 0 ? "no connection" : fmt::format("HTTP {}", status);
  }
};

Answer request(const ApiClient& api, const std::string& method, const std::string& path, const json& body = nullptr,
               int timeout_s = 10) {
  httplib::Client cli(api.host, api.port);
  cli.set_connection_timeout(5, 0);
  cli.set_read_timeout(timeout_s, 0);
  httplib::Headers headers;
  if (auto tok = env_var("PARALLAMA_ADMIN_TOKEN")) headers.emplace("Authorization", "Bearer " + *tok);
  httplib::Result r = method == "GET" ? cli.Get(path, headers)
                                      : cli.Post(path, headers, body.is_null() ? "" : body.dump(), "application/json");
  Answer a;
  if (!r) return a;
  a.status = r->status;
  a.body = json::parse(r->body, nullptr, false);
  if (a.body.is_discarded()) a.body = json(r->body);
  return a;
}

// The entry of `key` in a {"models": [...]} answer (/api/ps uses "name", /api/parallel "model").
json find_model(const json& answer, const std::string& key) {
  if (!answer.is_object() || !answer.contains("models")) return nullptr;
  for (const json& m : answer["models"])
    if (m.value("model", m.value("name", "")) == key) return m;
  return nullptr;
}

// The server's name for the model ("stories260k" -> "stories260k:latest"), from /api/ps once loaded.
std::string loaded_key(const ApiClient& api, const std::string& model) {
  const json ps = api.call("GET", "/api/ps");
  for (const std::string& k : {model, model + ":latest"})
    if (!find_model(ps, k).is_null()) return k;
  return model;
}

void load_model(const ApiClient& api, const std::string& model) {
  api.call("POST", "/api/generate", json{{"model", model}});
}

// POST /api/parallel; "" when set, else the server's reason for refusing the value.
std::string set_limit(const ApiClient& api, const std::string& key, const json& value) {
  for (int attempt = 0;; ++attempt) {
    const Answer a = request(api, "POST", "/api/parallel", json{{"model", key}, {"num_parallel", value}}, 120);
    if (a.status == 200) return "";
    if (a.status == 400) return a.error();
    if (a.status == 404 && attempt == 0 && a.error().find("page not found") == std::string::npos) {
      load_model(api, key);  // unloaded meanwhile (keep-alive): load it and try again
      continue;
    }
    fail("POST /api/parallel {} -> {}: {}", value.dump(), a.status, a.error());
  }
}

// Sum of a metric's samples in Prometheus text, those labelled model="<model>" when
// `model` is given (0 when absent). Label values with quotes are not expected here.
double metric_sum(const std::string& text, const std::string& name, const std::string& model = "") {
  double sum = 0;
  std::istringstream in(text);
  const std::string label = "model=\"" + model + "\"";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size()) continue;
    const char next = line[name.size()];
    if (next != ' ' && next != '{') continue;
    if (!model.empty() && line.find(label) == std::string::npos) continue;
    // `name{labels} value [timestamp]`: the value follows the labels' closing brace.
    const size_t labels_end = next == '{' ? line.rfind('}') : name.size();
    if (labels_end == std::string::npos) continue;
    sum += std::strtod(line.c_str() + labels_end + 1, nullptr);
  }
  return sum;
}

// ---- load generation

// A prompt of n_words common words; `id` varies it so that requests share no prefix
// (a shared prefix would be served from the prefix cache and flatter TTFT).
std::string make_prompt(uint64_t id, int n_words) {
  static const char* words[] = {
      "the",   "little", "dog",   "ran",    "to",    "a",      "big",   "tree",  "and",    "saw",  "bird",
      "sing",  "in",     "sun",   "she",    "was",   "happy",  "he",    "said",  "let",    "us",   "play",
      "with",  "ball",   "park",  "one",    "day",   "girl",   "named", "Lily",  "found",  "red",  "box",
      "under", "bed",    "it",    "had",    "toy",   "car",    "they",  "went",  "home",   "ate",  "cake",
      "mom",   "smiled", "cat",   "jumped", "on",    "table",  "fish",  "swam",  "pond",   "boy",  "Tom",
      "wanted", "share",  "his",   "friend", "sky",   "blue",   "green", "hill",  "walked", "slow", "fast"};
  constexpr size_t n_vocab = sizeof(words) / sizeof(words[0]);
  std::mt19937_64 rng(id * 0x9E3779B97F4A7C15ull + 1);
  std::string s;
  for (int i = 0; i < n_words; ++i) {
    std::string w = words[rng() % n_vocab];
    if (i == 0 || (i % 12 == 0)) w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
    s += (i ? " " : "") + w;
    if (i % 12 == 11) s += ".";
  }
  return s;
}

// One request as the client saw it.
struct RequestRecord {
  double ttft_ms = -1;         // < 0: cut before its first token
  std::vector<double> gaps_ms; // between consecutive token chunks
  int n_chunks = 0;            // token chunks received
  int n_tokens = 0;            // eval_count when it completed, else n_chunks
  int n_prompt = 0;
  double decode_s = 0;         // first to last chunk
  bool completed = false;
  std::string error;           // the server's error, if any
};

struct LevelRun {
  std::atomic<bool> stop{false};
  Clock::time_point t_end;
  std::atomic<uint64_t> next_id{0};
  std::atomic<int64_t> n_tokens{0};  // live count for the progress bar
  std::mutex mu;
  std::vector<RequestRecord> records;
};

RequestRecord one_request(httplib::Client& cli, const std::string& key, uint64_t id, int n_words, int gen_tokens,
                          LevelRun* run) {
  RequestRecord rec;
  const json body{{"model", key},
                  {"prompt", make_prompt(id, n_words)},
                  {"raw", true},
                  {"stream", true},
                  {"options", {{"num_predict", gen_tokens}, {"seed", static_cast<int64_t>(id)}}}};
  httplib::Request req;
  req.method = "POST";
  req.path = "/api/generate";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  int status = 0;
  std::string partial, err_body;
  const Clock::time_point t_send = Clock::now();
  Clock::time_point t_first, t_prev;
  req.response_handler = [&](const httplib::Response& r) {
    status = r.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (status >= 400) {
      err_body.append(data, n);
      return true;
    }
    const Clock::time_point now = Clock::now();
    if (run != nullptr && (run->stop.load() || now >= run->t_end)) return false;  // the window is over
    partial.append(data, n);
    size_t start = 0;
    for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
      const json j = json::parse(partial.substr(start, nl - start), nullptr, false);
      if (!j.is_object()) continue;
      if (j.contains("error")) {
        rec.error = j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump();
        return false;
      }
      const bool done = j.value("done", false);
      if (!done || !j.value("response", "").empty()) {
        if (rec.n_chunks == 0) {
          t_first = now;
          rec.ttft_ms = millis(now - t_send);
        } else {
          rec.gaps_ms.push_back(millis(now - t_prev));
        }
        t_prev = now;
        ++rec.n_chunks;
        if (run != nullptr) run->n_tokens.fetch_add(1);
      }
      if (done) {
        rec.completed = true;
        rec.n_prompt = j.value("prompt_eval_count", 0);
        rec.n_tokens = std::max(rec.n_chunks, j.value("eval_count", rec.n_chunks));
        if (run != nullptr) run->n_tokens.fetch_add(rec.n_tokens - rec.n_chunks);
      }
    }
    partial.erase(0, start);
    return true;
  };
  httplib::Response res;
  httplib::Error e = httplib::Error::Success;
  cli.send(req, res, e);
  if (status >= 400 && rec.error.empty()) {
    const json j = json::parse(err_body, nullptr, false);
    rec.error = j.is_object() && j.contains("error") ? j["error"].dump() : fmt::format("HTTP {}", status);
  }
  if (status == 0 && rec.error.empty() && (run == nullptr || !run->stop.load()) &&
      (run == nullptr || Clock::now() < run->t_end))
    rec.error = fmt::format("no answer from the server: {}", httplib::to_string(e));
  if (!rec.completed) rec.n_tokens = rec.n_chunks;
  if (rec.n_chunks > 1) rec.decode_s = seconds(t_prev - t_first);
  return rec;
}

// ---- one level

struct Progress {
  bool tty = isatty(STDERR_FILENO) != 0;
  Clock::time_point last_line = Clock::now();
  void update(const std::string& label, double done_s, double total_s, int64_t tokens) {
    const double frac = std::clamp(done_s / total_s, 0.0, 1.0);
    const double rate = done_s > 0 ? static_cast<double>(tokens) / done_s : 0;
    if (tty) {
      constexpr int width = 30;
      const int filled = static_cast<int>(frac * width);
      std::fprintf(stderr, "\r%s [%s%s] %3.0f/%.0f s  %lld tokens  %.1f tok/s\x1b[K", label.c_str(),
                   std::string(filled, '#').c_str(), std::string(width - filled, '-').c_str(), done_s, total_s,
                   static_cast<long long>(tokens), rate);
    } else if (Clock::now() - last_line >= 10s) {
      last_line = Clock::now();
      std::fprintf(stderr, "bench: %s %.0f/%.0f s, %lld tokens, %.1f tok/s\n", label.c_str(), done_s, total_s,
                   static_cast<long long>(tokens), rate);
    }
  }
  void finish(const std::string& line) {
    std::fprintf(stderr, tty ? "\r%s\x1b[K\n" : "bench: %s\n", line.c_str());
  }
};

// Waits (bounded) until the model has nothing running or queued, so that the
// cancelled tail of one level does not load the next.
void wait_idle(const ApiClient& api, const std::string& key) {
  const Clock::time_point deadline = Clock::now() + 30s;
  while (Clock::now() < deadline && !g_interrupted.load()) {
    const Answer a = request(api, "GET", "/api/ps");
    const json m = find_model(a.body, key);
    if (m.is_null() || (m.value("running", 0) == 0 && m.value("queued", 0) == 0)) return;
    std::this_thread::sleep_for(100ms);
  }
}

LevelResult run_level(const ApiClient& api, const std::string& key, int parallel, int n_words, const BenchOpts& o,
                      double duration_s, const std::string& label, uint64_t id_base) {
  LevelResult out;
  out.parallel = parallel;
  LevelRun run;
  run.next_id = id_base;
  std::vector<std::unique_ptr<httplib::Client>> clients;
  for (int i = 0; i < parallel; ++i) {
    clients.push_back(std::make_unique<httplib::Client>(api.host, api.port));
    clients.back()->set_connection_timeout(5, 0);
    clients.back()->set_read_timeout(3600, 0);
    clients.back()->set_keep_alive(true);
  }
  const Clock::time_point t0 = Clock::now();
  run.t_end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration_s));
  std::vector<std::thread> streams;
  for (int i = 0; i < parallel; ++i)
    streams.emplace_back([&, i] {
      while (!run.stop.load() && Clock::now() < run.t_end) {
        RequestRecord rec = one_request(*clients[i], key, run.next_id.fetch_add(1), n_words, o.gen_tokens, &run);
        std::lock_guard<std::mutex> lock(run.mu);
        run.records.push_back(std::move(rec));
      }
    });

  // Sample the server while the streams run: queue, KV use, memory.
  Progress progress;
  bool has_parallel_api = true, has_metrics = true;
  Clock::time_point next_sample = t0;
  while (Clock::now() < run.t_end && !g_interrupted.load()) {
    std::this_thread::sleep_for(std::min<Clock::duration>(250ms, run.t_end - Clock::now()));
    progress.update(label, seconds(Clock::now() - t0), duration_s, run.n_tokens.load());
    if (Clock::now() < next_sample) continue;
    next_sample = Clock::now() + 1s;
    const json ps = find_model(request(api, "GET", "/api/ps", nullptr, 2).body, key);
    if (!ps.is_null()) {
      out.queued_max = std::max(out.queued_max, ps.value("queued", 0));
      out.size_bytes = ps.value("size", uint64_t{0});
    }
    if (has_parallel_api) {
      const Answer a = request(api, "GET", "/api/parallel", nullptr, 2);
      has_parallel_api = a.status == 200;
      const json m = find_model(a.body, key);
      if (!m.is_null() && m.contains("kv_used") && m["kv_used"].is_number())
        out.kv_used_max = std::max(out.kv_used_max, m["kv_used"].get<double>());
    }
    if (has_metrics) {
      const Answer a = request(api, "GET", "/metrics", nullptr, 2);
      has_metrics = a.status == 200 && a.body.is_string();
      if (has_metrics) {
        const std::string text = a.body.get<std::string>();
        // The model's runner process holds its weights and KV cache.
        double rss = metric_sum(text, "parallama_runner_resident_memory_bytes", key);
        if (rss == 0) rss = metric_sum(text, "parallama_process_resident_memory_bytes");
        out.rss_bytes_max = std::max(out.rss_bytes_max, static_cast<uint64_t>(rss));
      }
    }
  }
  run.stop.store(true);
  const Clock::time_point t_cut = std::min(Clock::now(), run.t_end);
  for (auto& c : clients) c->stop();  // wakes streams blocked on a read; their requests are cut
  for (auto& t : streams) t.join();
  out.window_s = seconds(t_cut - t0);

  std::vector<double> ttft, itl, rates;
  double prompt_sum = 0;
  for (const RequestRecord& r : run.records) {
    if (!r.error.empty()) {
      if (out.n_failed++ == 0) out.first_failure = r.error;
      continue;
    }
    if (r.n_chunks == 0 && !r.completed) {  // cut while waiting for its first token: no TTFT sample
      ++out.n_requests;
      continue;
    }
    ++out.n_requests;
    out.n_tokens += r.n_tokens;
    if (r.ttft_ms >= 0) ttft.push_back(r.ttft_ms);
    // A chunk can carry several tokens (held-back text): spread its gap over them.
    const double per_chunk = std::max(1.0, static_cast<double>(r.n_tokens) / std::max(1, r.n_chunks));
    for (double g : r.gaps_ms) itl.push_back(g / per_chunk);
    if (r.decode_s > 0) rates.push_back(static_cast<double>(r.n_chunks - 1) * per_chunk / r.decode_s);
    if (r.completed) {
      ++out.n_completed;
      prompt_sum += r.n_prompt;
    }
  }
  out.agg_tok_s = out.window_s > 0 ? static_cast<double>(out.n_tokens) / out.window_s : 0;
  out.per_stream_tok_s = percentile(rates, 0.5);
  out.ttft_ms = summarize(ttft);
  out.itl_ms = summarize(itl);
  out.prompt_tokens_mean = out.n_completed > 0 ? prompt_sum / out.n_completed : 0;
  progress.finish(fmt::format("{}: {:.1f} tok/s, ITL p95 {:.0f} ms, TTFT p95 {:.0f} ms, {} requests", label,
                              out.agg_tok_s, out.itl_ms.p95, out.ttft_ms.p95, out.n_requests));
  if (out.n_failed > 0 && out.n_tokens == 0)
    fail("every request at parallel {} failed: {}", parallel, out.first_failure);
  return out;
}

// ---- the sweep

void bench(const BenchOpts& o) {
  const std::vector<int> levels = parse_levels(o.parallel);
  if (o.prompt_tokens < 1 || o.gen_tokens < 1) fail("--prompt-tokens and --gen-tokens must be at least 1");
  if (o.warmup < 0) fail("--warmup must be >= 0");
  const double duration_s = std::chrono::duration<double>(sched::parse_duration(o.duration)).count();
  if (duration_s <= 0) fail("--duration must be positive, got '{}'", o.duration);
  const double max_itl_ms = std::chrono::duration<double, std::milli>(sched::parse_duration(o.max_itl)).count();

  const ApiClient api = ApiClient::from_env();
  api.call("POST", "/api/show", json{{"model", o.model}});  // "model not found" before anything else
  std::fprintf(stderr, "bench: loading %s\n", o.model.c_str());
  load_model(api, o.model);
  const std::string key = loaded_key(api, o.model);

  BenchReport report;
  report.model = key;
  report.prompt_tokens = o.prompt_tokens;
  report.gen_tokens = o.gen_tokens;
  report.duration_s = duration_s;
  report.max_itl_ms = max_itl_ms;
  const Answer before = request(api, "GET", "/api/parallel");
  if (before.status == 404)
    fail("the server has no admin API (GET /api/parallel answered 404): bench needs it to set the parallel limit");
  if (before.status != 200) fail("GET /api/parallel -> {}: {}", before.status, before.error());
  const json entry = find_model(before.body, key);
  if (!entry.is_null()) {
    report.previous_parallel = entry.value("num_parallel", 0);
    report.previous_source = entry.value("source", "");
  }

  // Warm-up: pages the weights in and calibrates words per prompt token.
  int n_words = o.prompt_tokens;
  for (int i = 0; i < o.warmup && !g_interrupted.load(); ++i) {
    httplib::Client cli(api.host, api.port);
    cli.set_read_timeout(3600, 0);
    const RequestRecord r = one_request(cli, key, 1000000000ull + static_cast<uint64_t>(i), n_words,
                                        std::min(o.gen_tokens, 8), nullptr);
    if (!r.error.empty()) fail("warm-up request failed: {}", r.error);
    if (r.n_prompt > 0)
      n_words = std::max(1, static_cast<int>(std::lround(static_cast<double>(n_words) * o.prompt_tokens / r.n_prompt)));
    std::fprintf(stderr, "bench: warm-up %d/%d: %d prompt tokens, TTFT %.0f ms\n", i + 1, o.warmup, r.n_prompt,
                 r.ttft_ms);
  }

  std::exception_ptr failure;
  try {
    for (size_t li = 0; li < levels.size() && !g_interrupted.load(); ++li) {
      const int p = levels[li];
      LevelResult l;
      l.parallel = p;
      l.error = set_limit(api, key, p);
      if (!l.error.empty()) {
        std::fprintf(stderr, "bench: parallel %d refused: %s\n", p, l.error.c_str());
        report.levels.push_back(l);
        continue;
      }
      wait_idle(api, key);
      const std::string label = fmt::format("parallel {:>2} ({}/{})", p, li + 1, levels.size());
      report.levels.push_back(run_level(api, key, p, n_words, o, duration_s, label, li * 1000000ull));
    }
  } catch (...) {
    failure = std::current_exception();
  }
  report.interrupted = g_interrupted.load();
  if (report.previous_parallel) {
    const json value = report.previous_source == "auto" ? json("auto") : json(*report.previous_parallel);
    wait_idle(api, key);
    const std::string err = set_limit(api, key, value);
    report.restored = err.empty();
    if (!err.empty())
      std::fprintf(stderr, "bench: could not restore the limit %s: %s\n", value.dump().c_str(), err.c_str());
  }
  if (failure) std::rethrow_exception(failure);

  if (!o.svg.empty()) {
    std::ofstream f(o.svg, std::ios::binary);
    f << report_svg(report);
    if (!f) fail("cannot write {}", o.svg);
    std::fprintf(stderr, "bench: chart written to %s\n", o.svg.c_str());
  }
  if (o.json_out)
    std::printf("%s\n", report_json(report).dump(2).c_str());
  else
    std::printf("%s", report_table(report).c_str());
  if (report.interrupted) fail("interrupted: the results above are partial");
}

}  // namespace

void register_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOpts>();
  auto* cmd = app.add_subcommand("bench", "Sweep a model's parallel limit on the running server and measure it");
  cmd->add_option("model", o->model, "Model name")->required();
  cmd->add_option("--parallel", o->parallel, "Comma-separated parallel levels")->capture_default_str();
  cmd->add_option("--prompt-tokens", o->prompt_tokens, "Approximate prompt length in tokens")->capture_default_str();
  cmd->add_option("--gen-tokens", o->gen_tokens, "Tokens to generate per request (num_predict)")
      ->capture_default_str();
  cmd->add_option("--duration", o->duration, "Measured time per level (e.g. 60s, 2m)")->capture_default_str();
  cmd->add_option("--max-itl", o->max_itl, "Latency target: the best level keeps ITL p95 under it")
      ->capture_default_str();
  cmd->add_option("--warmup", o->warmup, "Short requests before the sweep (load, page in, calibrate the prompt)")
      ->capture_default_str();
  cmd->add_flag("--json", o->json_out, "Print the results as JSON instead of a table");
  cmd->add_option("--svg", o->svg, "Write a chart of throughput and ITL p95 against parallelism to this file");
  cmd->callback([o] {
    g_interrupted.store(false);
    auto previous = std::signal(SIGINT, on_sigint);
    try {
      bench(*o);
    } catch (...) {
      std::signal(SIGINT, previous);
      throw;
    }
    std::signal(SIGINT, previous);
  });
}

}  // namespace pl::cli
