// Jinja semantics, one construct at a time: each case is a template and the
// exact text it renders over one shared context. The expected strings are what
// Python's jinja2, configured as transformers' apply_chat_template configures
// it (trim_blocks, lstrip_blocks, loop controls, tojson without HTML escaping),
// renders for the same input (see check_with_jinja2.py).
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "chat/jinja.h"
#include "chat/pystr.h"

namespace {

const char* kContext = R"~({"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "Hi there"},
  {"role": "assistant", "content": "Yo"}], "s": "  Hello World  ", "n": 7, "f": 2.5, "l": [3, 1, 2],
  "d": {"b": 1, "a": [1, 2], "c": {"x": null}}, "t": true, "u": "héllo wörld", "e": [], "z": null})~";

// clang-format off
const std::vector<std::pair<std::string, std::string>> kCases = {
    {R"~({{ 1 + 2 * 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % -3 }}|{{ 2 ** 10 }}|{{ 7 / 2 }}|{{ 4 / 2 }}|{{ 1.5 + 1 }}|{{ 'a' ~ 1 ~ none }}|{{ 0.1 + 0.2 }}|{{ 1e20 }}|{{ 1e-5 }})~",
     R"~(7|3|-4|-2|1024|3.5|2.0|2.5|a1None|0.30000000000000004|1e+20|1e-05)~"},
    {R"~({{ s|trim }}|{{ s|upper }}|{{ s|title }}|{{ "hello wORLD"|capitalize }}|{{ s|length }}|{{ u|length }}|{{ u[1] }}|{{ u[::-1] }}|{{ u|upper }}|{{ u.title() }})~",
     R"~(Hello World|  HELLO WORLD  |  Hello World  |Hello world|15|11|é|dlröw olléh|HÉLLO WÖRLD|Héllo Wörld)~"},
    {R"~({{ l|sort }}|{{ l|sort(reverse=true) }}|{{ l|first }}|{{ l|last }}|{{ l|join(', ') }}|{{ l|sum }}|{{ l|max }}|{{ l|min }}|{{ l|reverse|list }}|{{ l|length }})~",
     R"~([1, 2, 3]|[3, 2, 1]|3|2|3, 1, 2|6|3|1|[2, 1, 3]|3)~"},
    {R"~({{ d|tojson }}|{{ d|tojson(indent=2) }}|{{ d|dictsort }}|{{ d|items|list }}|{{ d.keys()|list }}|{{ d.get('a') }}|{{ d.get('q', 'dflt') }}|{{ d['c']['x'] }})~",
     R"~({"b": 1, "a": [1, 2], "c": {"x": null}}|{
  "b": 1,
  "a": [
    1,
    2
  ],
  "c": {
    "x": null
  }
}|[('a', [1, 2]), ('b', 1), ('c', {'x': None})]|[('b', 1), ('a', [1, 2]), ('c', {'x': None})]|['b', 'a', 'c']|[1, 2]|dflt|None)~"},
    {R"~({% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}:{{ m.role }};{% endfor %})~",
     R"~(1/0/3/2/True/False/3:system;2/1/2/1/False/False/3:user;3/2/1/0/False/True/3:assistant;)~"},
    {R"~({% for m in messages if m.role != 'system' %}{{ loop.index }}={{ m.content }}{{ ',' if not loop.last }}{% else %}none{% endfor %}|{% for x in e %}x{% else %}empty{% endfor %})~",
     R"~(1=Hi there,2=Yo|empty)~"},
    {R"~({% for x in [1,2,3] %}{{ loop.previtem }}-{{ loop.nextitem }}-{{ loop.cycle('a','b') }};{% endfor %})~",
     R"~(-2-a;1-3-b;2--a;)~"},
    {R"~({%- for k, v in d.items() -%}
  {{ k }}={{ v }}
{% endfor -%}
END)~",
     R"~(b=1
a=[1, 2]
c={'x': None}
END)~"},
    {R"~(  {% if t %}
    yes
  {% endif %}
  {# comment #}
done)~",
     R"~(    yes
done)~"},
    {R"~(a  {%- if t %} b {% endif -%}  c)~",
     R"~(a b c)~"},
    {R"~(a
  {{- n -}}
  b)~",
     R"~(a7b)~"},
    {R"~({% for m in messages %}
  {{ m.role }}
{% endfor %})~",
     R"~(  system
  user
  assistant
)~"},
    {R"~(    {% if t %}indented{% endif %}   tail)~",
     R"~(indented   tail)~"},
    {R"~(line1
    {%+ if t %}kept indent{% endif %}
{%- raw %}{{ not parsed }}{% endraw %})~",
     R"~(line1
    kept indent{{ not parsed }})~"},
    {R"~({% set ns = namespace(count=0, names=[]) %}{% for m in messages %}{% set ns.count = ns.count + 1 %}{% set ns.names = ns.names + [m.role] %}{% endfor %}{{ ns.count }} {{ ns.names }})~",
     R"~(3 ['system', 'user', 'assistant'])~"},
    {R"~({% set x = 1 %}{% if t %}{% set x = 2 %}{% endif %}{{ x }}|{% for i in [1] %}{% set x = 3 %}{{ x }}{% endfor %}{{ x }})~",
     R"~(2|32)~"},
    {R"~({% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Bob') }} {{ greet('Al', greeting='Hi') }} {{ greet(name='Z') }})~",
     R"~(Hello, Bob! Hi, Al! Hello, Z!)~"},
    {R"~({% macro outer() %}[{{ caller() }}]{% endmacro %}{% call outer() %}inside {{ n }}{% endcall %}|{% filter upper %}loud {{ n }}{% endfilter %})~",
     R"~([inside 7]|LOUD 7)~"},
    {R"~({{ 'a,b,,c'.split(',') }}|{{ '  a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x', 'c')) }}|{{ 'aXbXc'.replace('X', '-') }}|{{ 'xxhixx'.strip('x') }}|{{ '{} and {}'.format(1, 'b') }}|{{ ' '.join(['a','b']) }})~",
     R"~(['a', 'b', '', 'c']|['a', 'b']|['a', 'b c']|True|True|a-b-c|hi|1 and b|a b)~"},
    {R"~({{ x is defined }}|{{ n is defined }}|{{ z is none }}|{{ s is string }}|{{ n is number }}|{{ t is boolean }}|{{ d is mapping }}|{{ l is iterable }}|{{ s is iterable }}|{{ n is iterable }}|{{ l is sequence }}|{{ t is true }}|{{ n is odd }}|{{ n is divisibleby 7 }}|{{ z is not none }})~",
     R"~(False|True|True|True|True|True|True|True|True|False|True|True|True|True|False)~"},
    {R"~({{ undefined_var }}|{{ undefined_var|default('dflt') }}|{{ ''|default('e', true) }}|{{ undefined_var|length }}|{% for x in undefined_var %}x{% endfor %}|{{ not undefined_var }})~",
     R"~(|dflt|e|0||True)~"},
    {R"~({{ 'yes' if t else 'no' }}|{{ 'x' if false }}|{{ n > 3 and n < 10 }}|{{ 1 < n < 5 }}|{{ 'a' in 'cat' }}|{{ 2 in l }}|{{ 'a' in d }}|{{ 'q' not in d }}|{{ none or 'fb' }}|{{ 0 and 1 }})~",
     R"~(yes||True|False|True|True|True|True|fb|0)~"},
    {R"~({{ messages|selectattr('role', 'equalto', 'user')|list }}|{{ messages|rejectattr('role', 'equalto', 'user')|map(attribute='role')|list }}|{{ ['b','a','B']|unique|list }}|{{ [1, 2, 3, 4]|select('odd')|list }}|{{ [1, 0, 2]|select|list }})~",
     R"~([{'role': 'user', 'content': 'Hi there'}]|['system', 'assistant']|['b', 'a']|[1, 3]|[1, 2])~"},
    {R"~({{ 42|string ~ 'x' }}|{{ '42'|int + 1 }}|{{ '3.5'|float }}|{{ 'abc'|int }}|{{ -3|abs }}|{{ 2.567|round(2) }}|{{ 2.5|round }}|{{ 3.5|round }}|{{ 2.1|round(method='ceil') }}|{{ '%s-%d'|format('a', 3) }}|{{ '%05.1f' % 3.14159 }})~",
     R"~(42x|43|3.5|0|3|2.57|2.0|4.0|3.0|a-3|003.1)~"},
    {R"~({{ l[0] }}|{{ l[-1] }}|{{ l[5] }}|{{ l[1:] }}|{{ l[:-1] }}|{{ l[::2] }}|{{ 'hello'[1:3] }}|{{ 'hello'[-3:] }}|{{ messages[0].role }}|{{ messages[-1]['content'] }}|{{ d.a.1 }})~",
     R"~(3|2||[1, 2]|[3, 1]|[3, 2]|el|llo|system|Yo|2)~"},
    {R"~({% set a, b = 1, 2 %}{{ a }}{{ b }}|{% set x %}block {{ n }}{% endset %}{{ x }}|{% set y | upper %}shout{% endset %}{{ y }}|{% with q = 5 %}{{ q }}{% endwith %}{{ q }})~",
     R"~(12|block 7|SHOUT|5)~"},
    {R"~({% for i in range(5) %}{% if i == 3 %}{% break %}{% endif %}{% if i == 1 %}{% continue %}{% endif %}{{ i }}{% endfor %}|{{ range(2, 10, 3)|list }}|{{ range(3)|list }})~",
     R"~(02|[2, 5, 8]|[0, 1, 2])~"},
    {R"~({{ [1, [2, 'x'], {'k': none}] }}|{{ (1, 2) }}|{{ (1,) }}|{{ {'a': 1, 'b': 'two'} }}|{{ ["it's"] }}|{{ none }}|{{ true }}|{{ [true, none, 1.0] }})~",
     R"~([1, [2, 'x'], {'k': None}]|(1, 2)|(1,)|{'a': 1, 'b': 'two'}|["it's"]|None|True|[True, None, 1.0])~"},
    {R"~({{ "a\nb\tc\\d\x41\u00e9" }}|{{ 'He said "hi"'|tojson }}|{{ u|tojson }}|{{ u|tojson(ensure_ascii=true) }}|{{ "</script>&"|tojson }}|{{ 1.0|tojson }}|{{ [1.5, none, true]|tojson }}|{{ {}|tojson }}|{{ []|tojson(indent=2) }})~",
     R"~(a
b	c\dAé|"He said \"hi\""|"héllo wörld"|"h\u00e9llo w\u00f6rld"|"</script>&"|1.0|[1.5, null, true]|{}|[])~"},
    {R"~({{ d|tojson(sort_keys=true) }}|{{ d|tojson(separators=(',', ':')) }}|{{ 'Hello %s, you are %d' % ('Bob', 30) }}|{{ '%(a)s!' % {'a': 'x'} }})~",
     R"~({"a": [1, 2], "b": 1, "c": {"x": null}}|{"b":1,"a":[1,2],"c":{"x":null}}|Hello Bob, you are 30|x!)~"},
    {R"~({{ "a\nb"|indent(2) }}|{{ "a\n\nb"|indent(2, true) }}|{{ "a\n\nb"|indent(2, blank=true) }}|{{ "one two  three"|wordcount }})~",
     R"~(a
  b|  a

  b|a
  
  b|3)~"},
    {R"~({%- set content = '<think>a</think>\n\nanswer' -%}
{{ content.split('</think>')[-1].lstrip('\n') }}|{{ content.split('</think>')[0].rstrip('\n').split('<think>')[-1] }})~",
     R"~(answer|a)~"},
    {R"~({{ 5 if n > 3 else 6 if n > 1 else 7 }}|{{ not t or n }}|{{ -n|abs }}|{{ -2 ** 2 }}|{{ (-2) ** 2 }}|{{ 2 ** -1 }}|{{ 1 == 1.0 }}|{{ true == 1 }}|{{ [1,2] < [1,3] }})~",
     R"~(5|7|7|4|4|0.5|True|True|True)~"},
    {R"~({%- set x = namespace(a=1) -%}{%- set y = x -%}{%- set y.a = 5 -%}{{ x.a }}|{{ dict(a=1, b=2) }}|{{ 'x'|e }}{{ '<a href="x">&\'</a>'|escape }}
)~",
     R"~(5|{'a': 1, 'b': 2}|x&lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt;)~"},
    {R"~({{ z|selectattr('a')|list }}|{{ z|map(attribute='a')|list }}|{{ undefined_v|reject('none')|list }}|{{ (z or [])|length }})~",
     R"~([]|[]|[]|0)~"},
    {R"~({{ '  a b  c  '.rsplit(None, 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ 1e16 }}|{{ 123456789012345.6 }}|{{ -0.0 }}|{{ 1e-4 }}|{{ 0.0001234 }}|{{ 2.0 ** 0.5 }}|{{ 'x\u2028y'.splitlines() }}|{{ 'ab'.replace('', '-') }}|{{ '\u00a0hi\u3000'.strip() }}|{{ 'ÉCOLE ß'.lower() }}|{{ 'Ab1'.isalnum() }})~",
     R"~(['  a b', 'c']|['a,b', 'c']|1e+16|123456789012345.6|-0.0|0.0001|0.0001234|1.4142135623730951|['x', 'y']|-a-b-|hi|école ß|True)~"},
};
// clang-format on

TEST(JinjaSemantics, MatchesReferenceRendering) {
  const auto ctx = nlohmann::ordered_json::parse(kContext);
  for (const auto& [src, want] : kCases) {
    SCOPED_TRACE(src);
    EXPECT_EQ(pl::chat::Template::parse(src).render(ctx), want);
  }
}

// The one JSON string escaper both template engines use, in its three dialects:
// control characters, an invalid byte, a character outside the BMP, HTML.
TEST(JsonString, Dialects) {
  using pl::chat::py::append_json_string;
  using pl::chat::py::JsonDialect;
  const std::string s = "a\"\\\n\x01<&>\xff\xe2\x80\xa8\xf0\x9f\x98\x80\xc3\xa9";
  auto esc = [&](JsonDialect d) {
    std::string out;
    append_json_string(out, s, d);
    return out;
  };
  EXPECT_EQ(esc(JsonDialect::Python), "\"a\\\"\\\\\\n\\u0001<&>\xff\xe2\x80\xa8\xf0\x9f\x98\x80\xc3\xa9\"");
  EXPECT_EQ(esc(JsonDialect::PythonAscii), R"("a\"\\\n\u0001<&>\ufffd\u2028\ud83d\ude00\u00e9")");
  EXPECT_EQ(esc(JsonDialect::Go), "\"a\\\"\\\\\\n\\u0001\\u003c\\u0026\\u003e\\ufffd\\u2028\xf0\x9f\x98\x80\xc3\xa9\"");
}

}  // namespace
