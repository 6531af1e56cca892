#include "cli/bench_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/markup.h"

namespace pl::cli {

using nlohmann::json;

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::clamp(p, 0.0, 1.0) * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (rank - static_cast<double>(lo));
}

Quantiles summarize(const std::vector<double>& values) {
  Quantiles q;
  q.n = values.size();
  if (values.empty()) return q;
  std::vector<double> v = values;
  std::sort(v.begin(), v.end());
  q.p50 = percentile(v, 0.50);
  q.p90 = percentile(v, 0.90);
  q.p95 = percentile(v, 0.95);
  q.p99 = percentile(v, 0.99);
  double sum = 0;
  for (double x : v) sum += x;
  q.mean = sum / static_cast<double>(v.size());
  return q;
}

namespace {

bool measured(const LevelResult& l) { return l.error.empty() && l.n_tokens > 0; }

std::string ms(double v) {
  if (v >= 1000) return fmt::format("{:.2f} s", v / 1000);
  return v >= 10 ? fmt::format("{:.0f} ms", v) : fmt::format("{:.1f} ms", v);
}

json quantiles_json(const Quantiles& q) {
  return json{{"p50", q.p50}, {"p90", q.p90}, {"p95", q.p95}, {"p99", q.p99}, {"mean", q.mean}, {"n", q.n}};
}

// A 1-2-5 tick step giving about n_ticks intervals up to max.
double nice_step(double max, int n_ticks) {
  if (!(max > 0)) return 1;
  const double raw = max / n_ticks;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

std::string tick_label(double v, double step) {
  if (step >= 1) return fmt::format("{:.0f}", v);
  return fmt::format("{:.{}f}", v, static_cast<int>(-std::floor(std::log10(step))));
}

}  // namespace

std::string human_bytes(uint64_t b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.{}f} {}", v, v < 10 ? 1 : 0, units[u]);
}

std::optional<size_t> best_level(const std::vector<LevelResult>& levels, double max_itl_ms) {
  std::optional<size_t> best;
  for (size_t i = 0; i < levels.size(); ++i) {
    const LevelResult& l = levels[i];
    if (!measured(l) || l.itl_ms.n == 0 || l.itl_ms.p95 > max_itl_ms) continue;
    if (!best || l.agg_tok_s > levels[*best].agg_tok_s) best = i;
  }
  return best;
}

json report_json(const BenchReport& r) {
  json levels = json::array();
  for (const LevelResult& l : r.levels) {
    json j{{"parallel", l.parallel}, {"ok", l.error.empty()}};
    if (!l.error.empty()) {
      j["error"] = l.error;
      levels.push_back(std::move(j));
      continue;
    }
    j.update(json{{"window_s", l.window_s},
                  {"tokens", l.n_tokens},
                  {"requests", l.n_requests},
                  {"requests_completed", l.n_completed},
                  {"requests_failed", l.n_failed},
                  {"agg_tok_s", l.agg_tok_s},
                  {"per_stream_tok_s", l.per_stream_tok_s},
                  {"ttft_ms", quantiles_json(l.ttft_ms)},
                  {"itl_ms", quantiles_json(l.itl_ms)},
                  {"prompt_tokens_mean", l.prompt_tokens_mean},
                  {"size_bytes", l.size_bytes},
                  {"kv_used_max", l.kv_used_max >= 0 ? json(l.kv_used_max) : json(nullptr)},
                  {"rss_bytes_max", l.rss_bytes_max > 0 ? json(l.rss_bytes_max) : json(nullptr)},
                  {"queued_max", l.queued_max}});
    if (l.n_failed > 0) j["first_failure"] = l.first_failure;
    levels.push_back(std::move(j));
  }
  json best = nullptr;
  if (auto b = best_level(r.levels, r.max_itl_ms)) {
    const LevelResult& l = r.levels[*b];
    best = json{{"parallel", l.parallel}, {"agg_tok_s", l.agg_tok_s}, {"itl_p95_ms", l.itl_ms.p95}};
  }
  json prev = nullptr;
  if (r.previous_parallel) prev = json{{"num_parallel", *r.previous_parallel}, {"source", r.previous_source}};
  return json{{"model", r.model},
              {"prompt_tokens", r.prompt_tokens},
              {"gen_tokens", r.gen_tokens},
              {"duration_s", r.duration_s},
              {"max_itl_ms", r.max_itl_ms},
              {"levels", levels},
              {"best", best},
              {"previous", prev},
              {"restored", r.restored},
              {"interrupted", r.interrupted}};
}

std::string report_table(const BenchReport& r) {
  std::vector<std::vector<std::string>> rows = {{"PARALLEL", "AGG TOK/S", "STREAM TOK/S", "TTFT P50", "TTFT P95",
                                                 "ITL P50", "ITL P95", "REQUESTS", "KV USED", "MEMORY"}};
  std::vector<std::string> refused;
  for (const LevelResult& l : r.levels) {
    if (!l.error.empty()) {
      refused.push_back(fmt::format("parallel {}: {}", l.parallel, l.error));
      continue;
    }
    rows.push_back({std::to_string(l.parallel), fmt::format("{:.1f}", l.agg_tok_s),
                    fmt::format("{:.1f}", l.per_stream_tok_s), ms(l.ttft_ms.p50), ms(l.ttft_ms.p95), ms(l.itl_ms.p50),
                    ms(l.itl_ms.p95), fmt::format("{} ({} done)", l.n_requests, l.n_completed),
                    l.kv_used_max >= 0 ? fmt::format("{:.0f}%", 100 * l.kv_used_max) : "-",
                    l.rss_bytes_max > 0 ? human_bytes(l.rss_bytes_max)
                    : l.size_bytes > 0  ? human_bytes(l.size_bytes)
                                        : "-"});
  }
  std::vector<size_t> w(rows[0].size(), 0);
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) w[i] = std::max(w[i], row[i].size());
  double prompt_sum = 0;
  int n_prompt = 0;
  for (const LevelResult& l : r.levels)
    if (l.prompt_tokens_mean > 0) {
      prompt_sum += l.prompt_tokens_mean;
      ++n_prompt;
    }
  const std::string measured_prompt = n_prompt > 0 ? fmt::format(" (measured {:.0f})", prompt_sum / n_prompt) : "";
  std::string out = fmt::format("{}: prompt ~{} tokens{}, up to {} generated tokens per request, {:.0f} s per level\n",
                                r.model, r.prompt_tokens, measured_prompt, r.gen_tokens, r.duration_s);
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) line += i + 1 < row.size() ? fmt::format("{:<{}}  ", row[i], w[i]) : row[i];
    out += line + "\n";
  }
  for (const auto& s : refused) out += "refused: " + s + "\n";
  if (auto b = best_level(r.levels, r.max_itl_ms)) {
    const LevelResult& l = r.levels[*b];
    out += fmt::format("best for ITL p95 <= {}: parallel {} ({:.1f} tokens/s, ITL p95 {})\n", ms(r.max_itl_ms),
                       l.parallel, l.agg_tok_s, ms(l.itl_ms.p95));
  } else {
    out += fmt::format("no level kept ITL p95 <= {}\n", ms(r.max_itl_ms));
  }
  for (const LevelResult& l : r.levels)
    if (l.n_failed > 0)
      out += fmt::format("warning: at parallel {} {} requests failed, the first with: {}\n", l.parallel, l.n_failed,
                         l.first_failure);
  for (const LevelResult& l : r.levels)
    if (l.error.empty() && l.queued_max > 0)
      out += fmt::format("warning: at parallel {} up to {} requests queued: the limit did not take effect\n",
                         l.parallel, l.queued_max);
  return out;
}

std::string report_svg(const BenchReport& r) {
  constexpr double W = 760, H = 440, ml = 80, mr = 84, mt = 64, mb = 62;
  constexpr double pw = W - ml - mr, ph = H - mt - mb;
  const char* c_tp = "#1f5fa8";   // throughput
  const char* c_itl = "#c8412c";  // latency
  const size_t n = r.levels.size();

  double max_tp = 0, max_itl = r.max_itl_ms;
  for (const LevelResult& l : r.levels) {
    if (!measured(l)) continue;
    max_tp = std::max(max_tp, l.agg_tok_s);
    max_itl = std::max(max_itl, l.itl_ms.p95);
  }
  const double tp_step = nice_step(max_tp * 1.05, 5), itl_step = nice_step(max_itl * 1.05, 5);
  const double tp_top = std::max(tp_step, std::ceil(max_tp * 1.05 / tp_step) * tp_step);
  const double itl_top = std::max(itl_step, std::ceil(max_itl * 1.05 / itl_step) * itl_step);
  auto x_of = [&](size_t i) {
    return ml + pw * (static_cast<double>(i) + 0.5) / static_cast<double>(std::max<size_t>(n, 1));
  };
  auto y_tp = [&](double v) { return mt + ph * (1 - v / tp_top); };
  auto y_itl = [&](double v) { return mt + ph * (1 - std::min(v, itl_top) / itl_top); };

  std::string s;
  auto add = [&](std::string line) { s += line + "\n"; };
  add(fmt::format(R"(<svg xmlns="http://www.w3.org/2000/svg" width="{0}" height="{1}" viewBox="0 0 {0} {1}" )"
                  R"(font-family="Helvetica, Arial, sans-serif" font-size="12">)",
                  W, H));
  const std::string title = fmt::format("parallama bench {}: prompt ~{} tokens, up to {} generated, {:.0f} s per level",
                                        markup_escape(r.model), r.prompt_tokens, r.gen_tokens, r.duration_s);
  add("<title>" + title + "</title>");
  add(fmt::format(R"(<rect width="{}" height="{}" fill="#ffffff"/>)", W, H));
  add(fmt::format(R"(<text x="{}" y="24" text-anchor="middle" font-size="14" font-weight="bold">{}</text>)", W / 2,
                  title));

  // Horizontal grid on the throughput scale, with both axes' labels.
  for (double v = 0; v <= tp_top + tp_step / 2; v += tp_step) {
    const double y = y_tp(v);
    add(fmt::format(R"(<line x1="{}" y1="{:.1f}" x2="{}" y2="{:.1f}" stroke="#e4e4e4"/>)", ml, y, ml + pw, y));
    add(fmt::format(R"(<text x="{}" y="{:.1f}" text-anchor="end" fill="{}">{}</text>)", ml - 6, y + 4, c_tp,
                    tick_label(v, tp_step)));
  }
  for (double v = 0; v <= itl_top + itl_step / 2; v += itl_step)
    add(fmt::format(R"(<text x="{}" y="{:.1f}" text-anchor="start" fill="{}">{}</text>)", ml + pw + 6, y_itl(v) + 4,
                    c_itl, tick_label(v, itl_step)));
  add(fmt::format(R"(<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#888"/>)", ml, mt, pw, ph));
  add(fmt::format(R"svg(<text transform="translate(22,{:.1f}) rotate(-90)" text-anchor="middle" fill="{}">)svg"
                  R"(aggregate tokens/s</text>)",
                  mt + ph / 2, c_tp));
  add(fmt::format(R"svg(<text transform="translate({:.1f},{:.1f}) rotate(90)" text-anchor="middle" fill="{}">)svg"
                  R"(inter-token latency p95 (ms)</text>)",
                  W - 24, mt + ph / 2, c_itl));
  add(fmt::format(R"(<text x="{:.1f}" y="{}" text-anchor="middle">parallel requests (num_parallel)</text>)",
                  ml + pw / 2, H - 16));

  // The latency target and the best level under it.
  const double y_target = y_itl(r.max_itl_ms);
  add(fmt::format(R"(<line x1="{}" y1="{:.1f}" x2="{}" y2="{:.1f}" stroke="{}" stroke-dasharray="6 4" )"
                  R"(stroke-opacity="0.6"/>)",
                  ml, y_target, ml + pw, y_target, c_itl));
  // Below the line: the throughput values are written above their points.
  add(fmt::format(R"(<text x="{}" y="{:.1f}" text-anchor="end" fill="{}" font-size="11">max ITL {:.0f} ms</text>)",
                  ml + pw - 4, y_target + 14, c_itl, r.max_itl_ms));
  if (auto b = best_level(r.levels, r.max_itl_ms)) {
    const double x = x_of(*b), band = pw / static_cast<double>(n) * 0.6;
    add(fmt::format(R"(<rect x="{:.1f}" y="{}" width="{:.1f}" height="{}" fill="#3a9a4a" fill-opacity="0.12"/>)",
                    x - band / 2, mt, band, ph));
    add(fmt::format(R"(<text x="{:.1f}" y="{}" text-anchor="middle" fill="#2c7a3a" font-size="11">best: {}</text>)", x,
                    mt + 14, r.levels[*b].parallel));
  }

  // x labels; refused levels are named, not drawn.
  for (size_t i = 0; i < n; ++i) {
    const LevelResult& l = r.levels[i];
    add(fmt::format(R"(<text x="{:.1f}" y="{}" text-anchor="middle">{}</text>)", x_of(i), mt + ph + 18, l.parallel));
    if (!l.error.empty())
      add(fmt::format(R"(<text x="{:.1f}" y="{}" text-anchor="middle" fill="#999" font-size="10">refused</text>)",
                      x_of(i), mt + ph + 32));
  }

  // The two series: throughput as circles on a solid line, ITL p95 as squares on a dashed one.
  std::string tp_pts, itl_pts;
  for (size_t i = 0; i < n; ++i) {
    const LevelResult& l = r.levels[i];
    if (!measured(l)) continue;
    tp_pts += fmt::format("{:.1f},{:.1f} ", x_of(i), y_tp(l.agg_tok_s));
    if (l.itl_ms.n > 0) itl_pts += fmt::format("{:.1f},{:.1f} ", x_of(i), y_itl(l.itl_ms.p95));
  }
  add(fmt::format(R"(<polyline points="{}" fill="none" stroke="{}" stroke-width="2.5"/>)", tp_pts, c_tp));
  add(fmt::format(R"(<polyline points="{}" fill="none" stroke="{}" stroke-width="2" stroke-dasharray="5 3"/>)",
                  itl_pts, c_itl));
  for (size_t i = 0; i < n; ++i) {
    const LevelResult& l = r.levels[i];
    if (!measured(l)) continue;
    const double x = x_of(i), yt = y_tp(l.agg_tok_s);
    add(fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="4.5" fill="{}" data-parallel="{}" data-tok-s="{:.2f}"/>)", x,
                    yt, c_tp, l.parallel, l.agg_tok_s));
    add(fmt::format(R"(<text x="{:.1f}" y="{:.1f}" text-anchor="middle" fill="{}" font-size="11">{:.1f}</text>)", x,
                    yt - 9, c_tp, l.agg_tok_s));
    if (l.itl_ms.n == 0) continue;
    const double yi = y_itl(l.itl_ms.p95);
    add(fmt::format(R"(<rect x="{:.1f}" y="{:.1f}" width="8" height="8" fill="{}" data-parallel="{}" )"
                    R"(data-itl-p95-ms="{:.2f}"/>)",
                    x - 4, yi - 4, c_itl, l.parallel, l.itl_ms.p95));
  }

  // Legend on one row between the title and the plot, where no data can sit.
  const double lx = ml, ly = mt - 16;
  add(fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2.5"/>)", lx, ly, lx + 22, ly,
                  c_tp));
  add(fmt::format(R"(<text x="{}" y="{}">aggregate tokens/s</text>)", lx + 28, ly + 4));
  add(fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2" stroke-dasharray="5 3"/>)",
                  lx + 170, ly, lx + 192, ly, c_itl));
  add(fmt::format(R"(<text x="{}" y="{}">inter-token latency p95</text>)", lx + 198, ly + 4));
  add("</svg>");
  return s;
}

}  // namespace pl::cli
