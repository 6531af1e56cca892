// The matcher and IR directly: tail calls keep repetition flat, the stack
// bound, left recursion is refused, arena compaction keeps the parse.
#include <gtest/gtest.h>

#include "grammar/ir.h"
#include "grammar/matcher.h"
#include "test_util.h"

namespace pl::grammar {
namespace {

bool match(const Grammar& g, std::string_view text) {
  Matcher m(g);
  std::vector<Top> cur, next;
  uint32_t flags = m.start(cur);
  for (char c : text) {
    flags = m.feed(cur, static_cast<uint8_t>(c), next);
    if (!(flags & kMatched) || (flags & kOverflow)) return false;
    cur.swap(next);
  }
  return (flags & kCanEnd) != 0;
}

TEST(Matcher, RepetitionRunsInConstantDepth) {
  GrammarBuilder b;
  const uint32_t root = b.new_rule("root");
  b.add_alt(root, {b.byte('['), b.star("as", {b.byte('a')}), b.byte(']')});
  const Grammar g = b.build(root);
  Matcher m(g);
  std::vector<Top> cur, next;
  m.start(cur);
  m.feed(cur, '[', next);
  cur.swap(next);
  const size_t arena0 = m.arena_size();
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(m.feed(cur, 'a', next) & kMatched);
    cur.swap(next);
  }
  EXPECT_EQ(m.arena_size(), arena0);  // no frame per repetition
  EXPECT_TRUE(m.feed(cur, ']', next) & kCanEnd);
}

TEST(Matcher, BoundedRepeat) {
  GrammarBuilder b;
  const uint32_t root = b.new_rule("root");
  b.add_alt(root, b.repeat("x", {b.byte('x')}, 2, 4));
  const Grammar g = b.build(root);
  EXPECT_FALSE(match(g, "x"));
  EXPECT_TRUE(match(g, "xx"));
  EXPECT_TRUE(match(g, "xxxx"));
  EXPECT_FALSE(match(g, "xxxxx"));
}

TEST(Matcher, LeftRecursionIsRefused) {
  GrammarBuilder b;
  const uint32_t root = b.new_rule("root");
  const uint32_t e = b.new_rule("e");
  const Sym nullable = b.opt("maybe", {b.byte('-')});
  b.add_alt(e, {nullable, GrammarBuilder::ref(e), b.byte('+')});
  b.add_alt(e, {b.byte('1')});
  b.add_alt(root, {GrammarBuilder::ref(e)});
  const std::string msg = test::error_of([&] { b.build(root); });
  EXPECT_NE(msg.find("left-recursive"), std::string::npos) << msg;
}

TEST(Matcher, AmbiguityIsBounded) {
  // (a | a)(a | a)... : identical stacks are merged, so the count stays 1.
  GrammarBuilder b;
  const uint32_t root = b.new_rule("root");
  const Sym two = b.alts("two", {{b.byte('a')}, {b.byte('a')}});
  b.add_alt(root, {b.star("many", {two})});
  const Grammar g = b.build(root);
  EXPECT_TRUE(match(g, std::string(500, 'a')));
}

TEST(Matcher, CompactKeepsTheParse) {
  GrammarBuilder b;
  const uint32_t root = b.new_rule("root");
  // Nested brackets: frames pile up with the depth.
  b.add_alt(root, {b.byte('('), GrammarBuilder::ref(root), b.byte(')'), b.byte('!')});
  b.add_alt(root, {b.byte('x')});
  const Grammar g = b.build(root);
  Matcher m(g);
  std::vector<Top> cur, next;
  m.start(cur);
  for (int i = 0; i < 50; ++i) {
    m.feed(cur, '(', next);
    cur.swap(next);
  }
  // Probe-and-rollback garbage, then compaction.
  for (int i = 0; i < 100; ++i) {
    const size_t mark = m.mark();
    m.feed(cur, '(', next);
    m.rollback(mark);
  }
  m.compact(cur);
  EXPECT_LE(m.arena_size(), 60u);
  m.feed(cur, 'x', next);
  cur.swap(next);
  uint32_t flags = 0;
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(m.feed(cur, ')', next) & kMatched);
    cur.swap(next);
    flags = m.feed(cur, '!', next);
    ASSERT_TRUE(flags & kMatched);
    cur.swap(next);
  }
  EXPECT_TRUE(flags & kCanEnd);
  EXPECT_TRUE(cur.empty());
}

}  // namespace
}  // namespace pl::grammar
