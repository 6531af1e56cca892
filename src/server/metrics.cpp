// GET /metrics: the cache, its pollers and the Prometheus text (see metrics.h).
#include "server/metrics.h"

#include <fmt/core.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <sstream>

#include "core/env.h"
#include "core/error.h"
#include "server/server_impl.h"

namespace pl::server {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Bucket bounds in seconds. CPU prefill of a long prompt takes minutes, so TTFT
// and end-to-end reach far; inter-token gaps sit between a few ms (tiny models)
// and a second (a large model at a wide batch).
const std::vector<double> kTtftBounds = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320};
const std::vector<double> kItlBounds = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,
                                        0.3,   0.4,  0.5,   0.75, 1,     2.5, 5,    10};
const std::vector<double> kE2eBounds = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60, 120, 300, 600, 1200, 3600};
const std::vector<double> kQueueBounds = {0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

// Finish reasons that always get a series, so rate() starts at 0.
constexpr const char* kReasons[] = {"stop", "length", "cancelled", "error"};

std::string read_small_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) return {};
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A "Key:   123 kB" line of /proc/<pid>/status or /proc/meminfo, in bytes; 0 if absent.
uint64_t proc_kb_field(const std::string& text, const std::string& key) {
  const std::string k = key + ":";
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    if (text.compare(pos, k.size(), k) == 0) return std::strtoull(text.c_str() + pos + k.size(), nullptr, 10) * 1024;
    pos = eol + 1;
  }
  return 0;
}

uint64_t rss_bytes(const std::string& pid) {
  return proc_kb_field(read_small_file("/proc/" + pid + "/status"), "VmRSS");
}

// Prometheus numbers: shortest round-trip decimal, +Inf / -Inf / NaN spelled its way.
std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}
std::string number(uint64_t v) { return fmt::format("{}", v); }
std::string number(int v) { return fmt::format("{}", v); }

using Labels = std::vector<std::pair<std::string, std::string>>;

// The text exposition format 0.0.4: a family's HELP and TYPE, then its samples.
class Text {
 public:
  void family(const std::string& name, const char* type, const char* help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  template <class T>
  void sample(const std::string& name, const Labels& labels, T value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      for (size_t i = 0; i < labels.size(); ++i) {
        if (i > 0) out_ += ',';
        out_ += labels[i].first;
        out_ += "=\"";
        escape(labels[i].second);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += number(value);
    out_ += '\n';
  }
  void histogram(const std::string& name, Labels labels, const Histogram& h) {
    labels.emplace_back("le", "");
    for (size_t i = 0; i <= h.bounds().size(); ++i) {
      labels.back().second = i < h.bounds().size() ? number(h.bounds()[i]) : "+Inf";
      sample(name + "_bucket", labels, h.cumulative(i));
    }
    labels.pop_back();
    sample(name + "_sum", labels, h.sum());
    sample(name + "_count", labels, h.count());
  }
  std::string take() { return std::move(out_); }

 private:
  // Label values escape backslash, double quote and newline.
  void escape(const std::string& v) {
    for (char c : v) {
      if (c == '\\')
        out_ += "\\\\";
      else if (c == '"')
        out_ += "\\\"";
      else if (c == '\n')
        out_ += "\\n";
      else
        out_ += c;
    }
  }
  std::string out_;
};

}  // namespace

// ---- Histogram, counters ----

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {
  PL_CHECK(std::is_sorted(bounds_.begin(), bounds_.end()), "histogram bounds must ascend");
}

void Histogram::observe(double v, uint64_t n) {
  if (n == 0 || std::isnan(v)) return;
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();  // first bound >= v
  counts_[i] += n;
  count_ += n;
  sum_ += v * static_cast<double>(n);
}

uint64_t Histogram::cumulative(size_t i) const {
  uint64_t c = 0;
  for (size_t j = 0; j <= i && j < counts_.size(); ++j) c += counts_[j];
  return c;
}

EngineCounters& EngineCounters::operator+=(const EngineCounters& o) {
  prefix_queries += o.prefix_queries;
  prefix_query_tokens += o.prefix_query_tokens;
  prefix_hit_tokens += o.prefix_hit_tokens;
  prompt_tokens += o.prompt_tokens;
  generated_tokens += o.generated_tokens;
  steps += o.steps;
  preemptions += o.preemptions;
  step_ms_total += o.step_ms_total;
  for (const auto& [reason, n] : o.finished) finished[reason] += n;
  return *this;
}

bool EngineCounters::went_down_from(const EngineCounters& b) const {
  if (prefix_queries < b.prefix_queries || prefix_query_tokens < b.prefix_query_tokens ||
      prefix_hit_tokens < b.prefix_hit_tokens || prompt_tokens < b.prompt_tokens ||
      generated_tokens < b.generated_tokens || steps < b.steps || preemptions < b.preemptions ||
      step_ms_total < b.step_ms_total)
    return true;
  for (const auto& [reason, n] : b.finished) {
    auto it = finished.find(reason);
    if ((it == finished.end() ? 0 : it->second) < n) return true;
  }
  return false;
}

void parse_runner_stats(const std::string& body, EngineGauges& g, EngineCounters& c) {
  const json j = json::parse(body);
  g.parallel = j.at("parallel").get<int>();
  g.running = j.at("running").get<int>();
  g.waiting = j.at("waiting").get<int>();
  g.kv_blocks_total = j.at("kv_blocks_total").get<int>();
  g.kv_blocks_used = j.at("kv_blocks_used").get<int>();
  g.kv_block_size = j.at("kv_block_size").get<int>();
  g.max_parallel = j.value("max_parallel", 0);
  g.last_step_ms = j.value("last_step_ms", 0.0);
  c.prefix_queries = j.value("prefix_queries", uint64_t{0});
  c.prefix_query_tokens = j.value("prefix_query_tokens", uint64_t{0});
  c.prefix_hit_tokens = j.value("prefix_hit_tokens", uint64_t{0});
  c.prompt_tokens = j.value("prompt_tokens", uint64_t{0});
  c.generated_tokens = j.value("generated_tokens", uint64_t{0});
  c.steps = j.value("steps", uint64_t{0});
  c.preemptions = j.value("preemptions", uint64_t{0});
  c.step_ms_total = j.value("step_ms_total", 0.0);
  c.finished.clear();
  if (j.contains("finished") && j["finished"].is_object())
    for (const auto& [reason, n] : j["finished"].items()) c.finished[reason] = n.get<uint64_t>();
}

bool read_runner_stats(int port, std::chrono::seconds timeout, EngineGauges& gauges, EngineCounters& counters) {
  const RunnerReply r = runner_get(port, "/stats", timeout);
  if (r.status != 200) return false;
  try {
    parse_runner_stats(r.body, gauges, counters);
  } catch (const json::exception&) {
    return false;
  }
  return true;
}

bool vllm_metrics_from_env() {
  const auto v = env_var("PARALLAMA_VLLM_METRICS");
  if (!v) return false;
  std::string s = *v;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (s.empty() || s == "0" || s == "false" || s == "no" || s == "off") return false;
  if (s == "1" || s == "true" || s == "yes" || s == "on") return true;
  fail("PARALLAMA_VLLM_METRICS must be 1 or 0 (true/false), got '{}'", *v);
}

// ---- Metrics ----

struct Metrics::ModelState {
  // From the scheduler's table.
  bool loaded = false;
  sched::RunnerInfo info;
  uint64_t rss_bytes = 0;
  int last_pid = 0;
  uint64_t runner_starts = 0;
  // From the runner's /stats.
  bool have_stats = false;
  int stats_pid = 0;
  Clock::time_point stats_at;
  EngineGauges gauges;
  EngineCounters base, last;  // exported: base + last (see metrics.h)
  // (poll time, generated tokens total): the oldest is the newest poll at least kRateWindow
  // before the last one, so a rate over them spans the window (polls come every 250 ms).
  std::deque<std::pair<Clock::time_point, uint64_t>> generated_at;
  // From the proxy path.
  Histogram ttft{kTtftBounds}, itl{kItlBounds}, e2e{kE2eBounds}, queue{kQueueBounds};
  std::deque<std::pair<Clock::time_point, float>> recent_gaps;  // (when, inter-token gap in ms)

  bool engine_fresh() const { return loaded && have_stats && stats_pid == info.pid; }
  EngineCounters total() const {
    EngineCounters t = base;
    t += last;
    return t;
  }
};

Metrics::Metrics(std::function<std::vector<sched::RunnerInfo>()> ps, Options opt)
    : ps_(std::move(ps)), opt_(opt) {}

Metrics::~Metrics() { stop(); }

void Metrics::start() {
  table_thread_ = std::thread([this] { table_loop(); });
  stats_thread_ = std::thread([this] { stats_loop(); });
}

void Metrics::stop() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (table_thread_.joinable()) table_thread_.join();
  if (stats_thread_.joinable()) stats_thread_.join();
}

Metrics::ModelState& Metrics::model_locked(const std::string& key) {
  auto& p = models_[key];
  if (!p) p = std::make_unique<ModelState>();
  return *p;
}

void Metrics::table_loop() {
  for (;;) {
    std::vector<sched::RunnerInfo> infos;
    try {
      infos = ps_();
    } catch (const std::exception&) {
      // Keep the last table; the scheduler never throws from ps() in practice.
    }
    std::vector<uint64_t> rss(infos.size(), 0);
    for (size_t i = 0; i < infos.size(); ++i)
      if (infos[i].pid > 0) rss[i] = rss_bytes(std::to_string(infos[i].pid));
    SystemState sys;
    sys.server_rss_bytes = rss_bytes("self");
    sys.mem_available_bytes = proc_kb_field(read_small_file("/proc/meminfo"), "MemAvailable");
    std::istringstream(read_small_file("/proc/loadavg")) >> sys.load1 >> sys.load5 >> sys.load15;
    {
      std::lock_guard<std::mutex> lock(mu_);
      system_ = sys;
      for (auto& [key, m] : models_) m->loaded = false;
      for (size_t i = 0; i < infos.size(); ++i) {
        ModelState& m = model_locked(infos[i].key);
        if (infos[i].pid > 0 && infos[i].pid != m.last_pid) {
          m.last_pid = infos[i].pid;
          ++m.runner_starts;
        }
        m.loaded = true;
        m.info = infos[i];
        m.rss_bytes = rss[i];
      }
      table_ = std::move(infos);
    }
    std::unique_lock<std::mutex> lock(stop_mu_);
    if (stop_cv_.wait_for(lock, opt_.table_interval, [&] { return stopping_; })) return;
  }
}

void Metrics::stats_loop() {
  // One keep-alive client per runner port, so a poll is one request on an open connection.
  std::map<int, std::unique_ptr<httplib::Client>> clients;
  const auto timeout_us = std::chrono::duration_cast<std::chrono::microseconds>(opt_.stats_timeout).count();
  for (;;) {
    std::vector<sched::RunnerInfo> table;
    {
      std::lock_guard<std::mutex> lock(mu_);
      table = table_;
    }
    struct Result {
      std::string key;
      int pid;
      EngineGauges gauges;
      EngineCounters counters;
    };
    std::vector<Result> results;
    std::map<int, std::unique_ptr<httplib::Client>> kept;
    for (const auto& info : table) {
      if (!info.ready || info.port <= 0) continue;
      auto it = clients.find(info.port);
      std::unique_ptr<httplib::Client> cli;
      if (it != clients.end()) {
        cli = std::move(it->second);
      } else {
        cli = std::make_unique<httplib::Client>("127.0.0.1", info.port);
        cli->set_keep_alive(true);
        cli->set_connection_timeout(timeout_us / 1000000, timeout_us % 1000000);
        cli->set_read_timeout(timeout_us / 1000000, timeout_us % 1000000);
        cli->set_write_timeout(timeout_us / 1000000, timeout_us % 1000000);
      }
      auto res = cli->Get("/stats");
      if (!res || res->status != 200) continue;  // dropped: the next poll reconnects
      Result r{info.key, info.pid, {}, {}};
      try {
        parse_runner_stats(res->body, r.gauges, r.counters);
      } catch (const std::exception&) {
        continue;
      }
      results.push_back(std::move(r));
      kept[info.port] = std::move(cli);
    }
    clients = std::move(kept);
    {
      std::lock_guard<std::mutex> lock(mu_);
      const auto now = Clock::now();
      for (auto& r : results) {
        ModelState& m = model_locked(r.key);
        if (r.pid != m.stats_pid || r.counters.went_down_from(m.last)) {
          m.base += m.last;  // a new runner: what the old one counted stays
          m.last = EngineCounters{};
          m.stats_pid = r.pid;
        }
        m.last = std::move(r.counters);
        m.gauges = r.gauges;
        m.have_stats = true;
        m.stats_at = now;
        m.generated_at.emplace_back(now, m.total().generated_tokens);
        while (m.generated_at.size() > 2 && now - m.generated_at[1].first >= kRateWindow) m.generated_at.pop_front();
      }
    }
    std::unique_lock<std::mutex> lock(stop_mu_);
    if (stop_cv_.wait_for(lock, opt_.stats_interval, [&] { return stopping_; })) return;
  }
}

void Metrics::observe_first_token(const std::string& model, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  model_locked(model).ttft.observe(seconds);
}

void Metrics::observe_inter_token(const std::string& model, double seconds, uint64_t n_tokens) {
  const auto now = Clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  ModelState& m = model_locked(model);
  m.itl.observe(seconds, n_tokens);
  for (uint64_t i = 0; i < n_tokens; ++i) m.recent_gaps.emplace_back(now, static_cast<float>(seconds * 1000.0));
  while (!m.recent_gaps.empty() && (m.recent_gaps.size() > kMaxGaps || now - m.recent_gaps.front().first > kGapHistory))
    m.recent_gaps.pop_front();
}

std::optional<double> Metrics::tokens_per_second(const std::string& model) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(model);
  if (it == models_.end() || !it->second->engine_fresh() || it->second->generated_at.size() < 2) return std::nullopt;
  const auto& [t0, n0] = it->second->generated_at.front();
  const auto& [t1, n1] = it->second->generated_at.back();
  const double dt = std::chrono::duration<double>(t1 - t0).count();
  return dt > 0 && n1 >= n0 ? static_cast<double>(n1 - n0) / dt : 0.0;
}

std::vector<double> Metrics::inter_token_gaps_ms(const std::string& model, Clock::time_point from,
                                                 Clock::time_point to) const {
  std::vector<double> out;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(model);
  if (it == models_.end()) return out;
  for (const auto& [when, gap_ms] : it->second->recent_gaps)
    if (when >= from && when < to) out.push_back(gap_ms);
  return out;
}

void Metrics::observe_end(const std::string& model, double e2e_seconds, double queue_seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ModelState& m = model_locked(model);
  m.e2e.observe(e2e_seconds);
  m.queue.observe(queue_seconds);
}

std::string Metrics::render() const {
  Text t;
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = Clock::now();
  using Get = std::function<double(const ModelState&)>;
  using When = std::function<bool(const ModelState&)>;
  const When loaded = [](const ModelState& m) { return m.loaded; };
  const When fresh = [](const ModelState& m) { return m.engine_fresh(); };
  const When any = [](const ModelState&) { return true; };
  // One family with one series per model that passes `when`.
  auto per_model = [&](const std::string& name, const char* type, const char* help, const When& when,
                       const Get& get, const char* label = "model") {
    t.family(name, type, help);
    for (const auto& [key, m] : models_)
      if (when(*m)) t.sample(name, {{label, key}}, get(*m));
  };
  auto kv_usage = [](const ModelState& m) {
    return m.gauges.kv_blocks_total > 0 ? static_cast<double>(m.gauges.kv_blocks_used) / m.gauges.kv_blocks_total
                                        : 0.0;
  };

  t.family("parallama_models_loaded", "gauge", "Models with a runner (loading or ready).");
  t.sample("parallama_models_loaded", {}, static_cast<uint64_t>(table_.size()));
  per_model("parallama_runner_ready", "gauge", "1 when the model's runner has loaded, 0 while it loads.", loaded,
            [](const ModelState& m) { return m.info.ready ? 1.0 : 0.0; });

  // Requests: the server's view (leases on the runner) and the engine's.
  per_model("parallama_requests_running", "gauge",
            "Requests running on the model's runner (server view: in flight, up to the parallel limit).", loaded,
            [](const ModelState& m) { return double(m.info.running); });
  per_model("parallama_requests_waiting", "gauge",
            "Requests waiting for a slot of the model's runner (server view: in flight beyond the parallel limit).",
            loaded, [](const ModelState& m) { return double(m.info.queued); });
  per_model("parallama_engine_requests_running", "gauge",
            "Sequences the engine has admitted (holding KV blocks), at its last snapshot.", fresh,
            [](const ModelState& m) { return double(m.gauges.running); });
  per_model("parallama_engine_requests_waiting", "gauge", "Requests queued inside the engine, at its last snapshot.",
            fresh, [](const ModelState& m) { return double(m.gauges.waiting); });
  per_model("parallama_parallel_limit", "gauge", "Requests the model runs at once (the scheduler's setting).",
            loaded, [](const ModelState& m) { return double(m.info.num_parallel); });
  per_model("parallama_engine_parallel_limit", "gauge", "The parallel limit in effect in the engine.", fresh,
            [](const ModelState& m) { return double(m.gauges.parallel); });
  t.family("parallama_parallel_info", "gauge", "Where the model's parallel limit comes from (label source).");
  for (const auto& [key, m] : models_)
    if (m->loaded) t.sample("parallama_parallel_info", {{"model", key}, {"source", m->info.parallel_source}}, 1);
  per_model("parallama_context_length_tokens", "gauge", "Context per sequence (num_ctx).", loaded,
            [](const ModelState& m) { return double(m.info.num_ctx); });

  // KV cache.
  per_model("parallama_kv_cache_usage_ratio", "gauge", "Fraction of KV cache blocks held by sequences (0-1).", fresh,
            kv_usage);
  per_model("parallama_kv_cache_blocks_total", "gauge", "KV cache blocks in the runner's pool.", fresh,
            [](const ModelState& m) { return double(m.gauges.kv_blocks_total); });
  per_model("parallama_kv_cache_blocks_used", "gauge", "KV cache blocks held by sequences.", fresh,
            [](const ModelState& m) { return double(m.gauges.kv_blocks_used); });
  t.family("parallama_cache_config_info", "gauge", "KV cache geometry: tokens per block and blocks in the pool.");
  for (const auto& [key, m] : models_)
    if (m->engine_fresh())
      t.sample("parallama_cache_config_info",
               {{"model", key},
                {"block_size", number(m->gauges.kv_block_size)},
                {"num_blocks", number(m->gauges.kv_blocks_total)}},
               1);

  // Counters (monotonic over runner restarts).
  using GetCounter = std::function<double(const EngineCounters&)>;
  auto counter = [&](const std::string& name, const char* help, const GetCounter& get) {
    per_model(name, "counter", help, [](const ModelState& m) { return m.have_stats; },
              [&](const ModelState& m) { return get(m.total()); });
  };
  counter("parallama_prefix_cache_queries_total", "Admissions that looked up the prefix cache.",
          [](const EngineCounters& c) { return double(c.prefix_queries); });
  counter("parallama_prefix_cache_query_tokens_total", "Prompt tokens (in full blocks) looked up in the prefix cache.",
          [](const EngineCounters& c) { return double(c.prefix_query_tokens); });
  counter("parallama_prefix_cache_hit_tokens_total", "Prompt tokens found in the prefix cache.",
          [](const EngineCounters& c) { return double(c.prefix_hit_tokens); });
  counter("parallama_prompt_tokens_total", "Prompt tokens computed (prefix cache hits excluded).",
          [](const EngineCounters& c) { return double(c.prompt_tokens); });
  counter("parallama_generated_tokens_total", "Tokens generated.",
          [](const EngineCounters& c) { return double(c.generated_tokens); });
  counter("parallama_preemptions_total", "Sequences preempted because the KV pool ran out.",
          [](const EngineCounters& c) { return double(c.preemptions); });
  counter("parallama_engine_steps_total", "Engine steps (batched forward passes).",
          [](const EngineCounters& c) { return double(c.steps); });
  counter("parallama_engine_step_seconds_total", "Time spent in engine steps, in seconds.",
          [](const EngineCounters& c) { return c.step_ms_total / 1000.0; });
  t.family("parallama_requests_finished_total", "counter", "Requests finished, by reason.");
  for (const auto& [key, m] : models_) {
    if (!m->have_stats) continue;
    auto finished = m->total().finished;
    for (const char* r : kReasons) finished.try_emplace(r, 0);
    for (const auto& [reason, n] : finished)
      t.sample("parallama_requests_finished_total", {{"model", key}, {"reason", reason}}, n);
  }
  per_model("parallama_runner_starts_total", "counter", "Runner processes started for the model (restarts included).",
            [](const ModelState& m) { return m.runner_starts > 0; },
            [](const ModelState& m) { return double(m.runner_starts); });
  per_model("parallama_engine_last_step_seconds", "gauge", "Duration of the engine's last step, in seconds.", fresh,
            [](const ModelState& m) { return m.gauges.last_step_ms / 1000.0; });
  per_model("parallama_runner_stats_age_seconds", "gauge", "Age of the cached engine snapshot, in seconds.", fresh,
            [&](const ModelState& m) { return std::chrono::duration<double>(now - m.stats_at).count(); });

  // Latency histograms, measured in the proxy path.
  auto histograms = [&](const std::string& name, const char* help, Histogram ModelState::*h) {
    t.family(name, "histogram", help);
    for (const auto& [key, m] : models_)
      if (((*m).*h).count() > 0 || m->have_stats) t.histogram(name, {{"model", key}}, (*m).*h);
  };
  histograms("parallama_time_to_first_token_seconds", "Time from the request's arrival to its first token, in seconds.",
             &ModelState::ttft);
  histograms("parallama_inter_token_latency_seconds", "Time between consecutive generated tokens, in seconds.",
             &ModelState::itl);
  histograms("parallama_e2e_request_latency_seconds", "Time from the request's arrival to its last token, in seconds.",
             &ModelState::e2e);
  histograms("parallama_request_queue_time_seconds",
             "Time a request waited in the runner before its first step, in seconds.", &ModelState::queue);

  // Memory and system.
  t.family("parallama_process_resident_memory_bytes", "gauge", "Resident memory of the server process, in bytes.");
  t.sample("parallama_process_resident_memory_bytes", {}, system_.server_rss_bytes);
  per_model("parallama_runner_resident_memory_bytes", "gauge", "Resident memory of the model's runner, in bytes.",
            loaded, [](const ModelState& m) { return double(m.rss_bytes); });
  per_model("parallama_model_weights_bytes", "gauge", "Size of the model's weights (its GGUF file), in bytes.", loaded,
            [](const ModelState& m) { return double(m.info.weights_bytes); });
  per_model("parallama_model_memory_estimate_bytes", "gauge",
            "The scheduler's memory estimate for the runner (weights + KV + compute), in bytes.", loaded,
            [](const ModelState& m) { return double(m.info.size_bytes); });
  t.family("parallama_system_memory_available_bytes", "gauge", "MemAvailable of /proc/meminfo, in bytes.");
  t.sample("parallama_system_memory_available_bytes", {}, system_.mem_available_bytes);
  t.family("parallama_system_load1", "gauge", "System load average over 1 minute.");
  t.sample("parallama_system_load1", {}, system_.load1);
  t.family("parallama_system_load5", "gauge", "System load average over 5 minutes.");
  t.sample("parallama_system_load5", {}, system_.load5);
  t.family("parallama_system_load15", "gauge", "System load average over 15 minutes.");
  t.sample("parallama_system_load15", {}, system_.load15);

  if (opt_.vllm_aliases) {
    // vLLM's names and labels (model_name, engine), for routers and autoscalers
    // written against vLLM: Gateway API Inference Extension, production-stack, KEDA.
    auto vllm = [&](const std::string& name, const char* type, const char* help, const When& when, const Get& get) {
      t.family(name, type, help);
      for (const auto& [key, m] : models_)
        if (when(*m)) t.sample(name, {{"model_name", key}, {"engine", "0"}}, get(*m));
    };
    vllm("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.", loaded,
         [](const ModelState& m) { return double(m.info.running); });
    vllm("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", loaded,
         [](const ModelState& m) { return double(m.info.queued); });
    vllm("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.", fresh, kv_usage);
    vllm("vllm:gpu_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage (older name).", fresh,
         kv_usage);
    vllm("vllm:prefix_cache_queries_total", "counter", "Prefix cache queries, in terms of number of queried tokens.",
         [](const ModelState& m) { return m.have_stats; },
         [](const ModelState& m) { return double(m.total().prefix_query_tokens); });
    vllm("vllm:prefix_cache_hits_total", "counter", "Prefix cache hits, in terms of number of cached tokens.",
         [](const ModelState& m) { return m.have_stats; },
         [](const ModelState& m) { return double(m.total().prefix_hit_tokens); });
    t.family("vllm:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig.");
    for (const auto& [key, m] : models_)
      if (m->engine_fresh())
        t.sample("vllm:cache_config_info",
                 {{"model_name", key},
                  {"engine", "0"},
                  {"block_size", number(m->gauges.kv_block_size)},
                  {"num_gpu_blocks", number(m->gauges.kv_blocks_total)},
                  {"num_cpu_blocks", "0"},
                  {"cache_dtype", "f16"},
                  {"enable_prefix_caching", "True"}},
                 1);
  }
  return t.take();
}

// ---- RequestTimer ----

RequestTimer::RequestTimer(Metrics* metrics, std::string model, Clock::time_point t_arrival)
    : metrics_(metrics), model_(std::move(model)), t_arrival_(t_arrival), t_last_(t_arrival) {}

void RequestTimer::on_tokens(int n, Clock::time_point now) {
  if (metrics_ == nullptr || n <= 0 || ended_) return;
  if (!first_seen_) {
    first_seen_ = true;
    metrics_->observe_first_token(model_, std::chrono::duration<double>(now - t_arrival_).count());
  } else {
    // Tokens that arrive together share the gap since the previous line.
    const double gap = std::chrono::duration<double>(now - t_last_).count();
    metrics_->observe_inter_token(model_, gap / n, static_cast<uint64_t>(n));
  }
  t_last_ = now;
}

void RequestTimer::on_done(double queue_ms, Clock::time_point now) {
  if (metrics_ == nullptr || ended_) return;
  ended_ = true;
  metrics_->observe_end(model_, std::chrono::duration<double>(now - t_arrival_).count(), queue_ms / 1000.0);
}

// ---- the route ----

void Server::Impl::routes_metrics() {
  svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    if (!metrics) {
      send_error(res, 503, "metrics are not available yet");
      return;
    }
    res.set_content(metrics->render() + (tuner ? tuner->metrics_text() : std::string()),
                    "text/plain; version=0.0.4; charset=utf-8");
  });
}

}  // namespace pl::server
