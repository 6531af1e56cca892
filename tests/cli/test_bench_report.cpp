// `parallama bench`'s statistics and renderings, and the live view's content
// negotiation: pure functions, no server.
#include <gtest/gtest.h>

#include <regex>

#include "cli/bench_report.h"
#include "server/ui.h"

namespace pl::cli {
namespace {

LevelResult level(int parallel, double tok_s, double itl_p95) {
  LevelResult l;
  l.parallel = parallel;
  l.window_s = 10;
  l.n_tokens = static_cast<int64_t>(tok_s * 10);
  l.n_requests = parallel * 2;
  l.n_completed = parallel;
  l.agg_tok_s = tok_s;
  l.per_stream_tok_s = tok_s / parallel;
  l.itl_ms = summarize({itl_p95 / 2, itl_p95});
  l.itl_ms.p95 = itl_p95;
  l.ttft_ms = summarize({100, 200});
  return l;
}

BenchReport sample_report() {
  BenchReport r;
  r.model = "a<b>&\"c\":latest";
  r.prompt_tokens = 128;
  r.gen_tokens = 64;
  r.duration_s = 10;
  r.max_itl_ms = 200;
  r.levels = {level(1, 20, 60), level(2, 35, 90), level(4, 50, 180), level(8, 60, 320)};
  LevelResult refused;
  refused.parallel = 16;
  refused.error = "needs 4096 KV blocks, the pool has 2048";
  r.levels.push_back(refused);
  return r;
}

TEST(BenchStats, PercentileInterpolatesBetweenRanks) {
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 0.0), 1);
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 1.0), 4);
  EXPECT_DOUBLE_EQ(percentile({7}, 0.95), 7);
  EXPECT_DOUBLE_EQ(percentile({}, 0.5), 0);
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_NEAR(percentile(v, 0.95), 95.05, 1e-9);
}

TEST(BenchStats, SummarizeCountsAndAverages) {
  Quantiles q = summarize({10, 20, 30});
  EXPECT_EQ(q.n, 3u);
  EXPECT_DOUBLE_EQ(q.mean, 20);
  EXPECT_DOUBLE_EQ(q.p50, 20);
  EXPECT_EQ(summarize({}).n, 0u);
}

TEST(BenchStats, BestLevelIsTheFastestUnderTheLatencyTarget) {
  const BenchReport r = sample_report();
  auto b = best_level(r.levels, 200);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(r.levels[*b].parallel, 4);  // 8 is faster but breaks the target; 16 was refused
  EXPECT_EQ(r.levels[*best_level(r.levels, 1000)].parallel, 8);
  EXPECT_FALSE(best_level(r.levels, 10).has_value());
}

TEST(BenchReport, JsonHasEveryLevelAndTheBest) {
  const nlohmann::json j = report_json(sample_report());
  ASSERT_EQ(j["levels"].size(), 5u);
  EXPECT_EQ(j["levels"][2]["parallel"], 4);
  EXPECT_DOUBLE_EQ(j["levels"][2]["agg_tok_s"].get<double>(), 50);
  EXPECT_DOUBLE_EQ(j["levels"][2]["itl_ms"]["p95"].get<double>(), 180);
  EXPECT_FALSE(j["levels"][4]["ok"].get<bool>());
  EXPECT_NE(j["levels"][4]["error"].get<std::string>().find("KV"), std::string::npos);
  EXPECT_EQ(j["best"]["parallel"], 4);
  EXPECT_TRUE(j["levels"][0]["kv_used_max"].is_null());  // unknown stays null, not -1
}

TEST(BenchReport, TableNamesTheBestLevelAndTheRefusedOne) {
  const std::string t = report_table(sample_report());
  EXPECT_NE(t.find("PARALLEL"), std::string::npos);
  EXPECT_NE(t.find("best for ITL p95 <= 200 ms: parallel 4"), std::string::npos) << t;
  EXPECT_NE(t.find("refused: parallel 16"), std::string::npos) << t;
}

TEST(BenchReport, SvgIsOneEscapedDocumentWithAPointPerMeasuredLevel) {
  const std::string s = report_svg(sample_report());
  EXPECT_EQ(s.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(s.find("</svg>"), std::string::npos);
  EXPECT_EQ(s.find("a<b>"), std::string::npos);  // the model name is escaped
  EXPECT_NE(s.find("a&lt;b&gt;&amp;&#34;c&#34;"), std::string::npos);
  const std::regex circle("<circle [^>]*data-parallel=\"(\\d+)\"");
  int n = 0;
  for (auto it = std::sregex_iterator(s.begin(), s.end(), circle); it != std::sregex_iterator(); ++it) ++n;
  EXPECT_EQ(n, 4);
  EXPECT_NE(s.find("best: 4"), std::string::npos);
  EXPECT_NE(s.find("refused"), std::string::npos);
  EXPECT_EQ(s.find("nan"), std::string::npos);
}

TEST(BenchReport, SvgOfAnEmptySweepIsStillValid) {
  BenchReport r;
  r.model = "m";
  r.max_itl_ms = 200;
  const std::string s = report_svg(r);
  EXPECT_NE(s.find("</svg>"), std::string::npos);
  EXPECT_EQ(s.find("nan"), std::string::npos);
  EXPECT_EQ(s.find("inf"), std::string::npos);
}

TEST(LiveView, BrowsersGetThePagePlainClientsGetText) {
  using server::prefers_html;
  EXPECT_TRUE(prefers_html("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"));
  EXPECT_TRUE(prefers_html("text/html"));
  EXPECT_FALSE(prefers_html("*/*"));  // curl
  EXPECT_FALSE(prefers_html(""));
  EXPECT_FALSE(prefers_html("application/json"));
  EXPECT_FALSE(prefers_html("text/html;q=0"));
  EXPECT_FALSE(prefers_html("text/plain, text/html;q=0.5"));
  EXPECT_TRUE(prefers_html("text/plain;q=0.5, TEXT/HTML"));
}

TEST(LiveView, PageIsSelfContained) {
  const std::string& page = server::ui_page();
  EXPECT_NE(page.find("id=\"models-body\""), std::string::npos);
  EXPECT_NE(page.find("id=\"throughput-chart\""), std::string::npos);
  for (const char* external : {"src=\"http", "href=\"http", "@import", "<script src", "<link rel=\"stylesheet\""})
    EXPECT_EQ(page.find(external), std::string::npos) << external;
}

}  // namespace
}  // namespace pl::cli
