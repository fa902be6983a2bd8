"""Chat templates written for the tests, one per tool-call family, in that family's syntax.

Each renders the tools, the assistant's earlier calls and the tool results the way the
family's real template does (Qwen 2.5 / Hermes, Llama 3.1, Mistral v0.3, Qwen3-Coder),
trimmed to what the tests need. The default model (SmolLM2) has no tool template of its
own, so tests pass these per request (``chat_template_kwargs={"chat_template": ...}``).
"""

from __future__ import annotations

from typing import Any

from furiosa_integrations.core.text.tool_formats import format_named

HERMES = """
{%- if tools %}<|im_start|>system
{% if messages[0].role == 'system' %}{{ messages[0].content }}

{% endif %}# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>{% for tool in tools %}{{ '\\n' + tool | tojson }}{% endfor %}
</tools>

For each function call, return a json object with function name and arguments within \
<tool_call></tool_call> XML tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call><|im_end|>
{% elif messages[0].role == 'system' %}<|im_start|>system
{{ messages[0].content }}<|im_end|>
{% endif %}
{%- for m in messages %}
{%- if m.role == 'system' and loop.first %}
{%- elif m.role == 'assistant' %}<|im_start|>assistant
{% if m.content %}{{ m.content }}{% endif %}
{%- for c in m.tool_calls or [] %}
<tool_call>
{"name": "{{ c.function.name }}", "arguments": {{ c.function.arguments | tojson }}}
</tool_call>{% endfor %}<|im_end|>
{% elif m.role == 'tool' %}
{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}<|im_start|>user{% endif %}
{{- '\\n' }}<tool_response>
{{ m.content }}
</tool_response>
{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}<|im_end|>
{% endif %}
{%- else %}<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"""

LLAMA3 = """
{{- bos_token }}
{%- if messages[0].role == 'system' %}{% set system_message = messages[0].content %}\
{% set loop_messages = messages[1:] %}\
{%- else %}{% set system_message = '' %}{% set loop_messages = messages %}{% endif %}
{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}
{%- if tools %}{{ 'Environment: ipython\\n' }}{% endif %}
{{- system_message }}<|eot_id|>
{%- for m in loop_messages %}
{%- if m.role == 'user' and loop.first and tools %}\
<|start_header_id|>user<|end_header_id|>

Given the following functions, please respond with a JSON for a function call with its \
proper arguments that best answers the given prompt.

Respond in the format {"name": function name, "parameters": dictionary of argument name and \
its value}. Do not use variables.

{% for t in tools %}{{ t | tojson(indent=4) }}

{% endfor %}{{ m.content }}<|eot_id|>
{%- elif m.role == 'assistant' and m.tool_calls %}<|start_header_id|>assistant<|end_header_id|>

{% for c in m.tool_calls %}{"name": "{{ c.function.name }}", "parameters": \
{{ c.function.arguments | tojson }}}{% if not loop.last %}; {% endif %}{% endfor %}<|eot_id|>
{%- elif m.role == 'tool' %}<|start_header_id|>ipython<|end_header_id|>

{{ m.content }}<|eot_id|>
{%- else %}<|start_header_id|>{{ m.role }}<|end_header_id|>

{{ m.content }}<|eot_id|>
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>

{% endif %}"""

MISTRAL = """
{%- if messages[0].role == 'system' %}{% set system_message = messages[0].content %}\
{% set loop_messages = messages[1:] %}{% else %}{% set loop_messages = messages %}{% endif %}
{%- set user_messages = loop_messages | selectattr('role', 'equalto', 'user') | list %}
{{- bos_token }}
{%- for m in loop_messages %}
{%- if m.role == 'user' %}
{%- if tools and m == user_messages[-1] %}[AVAILABLE_TOOLS] {{ tools | tojson }}\
[/AVAILABLE_TOOLS]{% endif %}
{{- '[INST] ' }}{% if loop.last and system_message is defined %}{{ system_message }}

{% endif %}{{ m.content }}[/INST]
{%- elif m.tool_calls %}[TOOL_CALLS] [{% for c in m.tool_calls %}\
{% if c.id is not defined or c.id | length != 9 %}\
{{ raise_exception('Tool call IDs should be alphanumeric strings with length 9!') }}{% endif %}\
{"name": "{{ c.function.name }}", "arguments": {{ c.function.arguments | tojson }}, \
"id": "{{ c.id }}"}{% if not loop.last %}, {% endif %}{% endfor %}]{{ eos_token }}
{%- elif m.role == 'tool' %}\
{% if m.tool_call_id is not defined or m.tool_call_id | length != 9 %}\
{{ raise_exception('Tool call IDs should be alphanumeric strings with length 9!') }}{% endif %}\
[TOOL_RESULTS] {"content": {{ m.content | tojson }}, "call_id": "{{ m.tool_call_id }}"}\
[/TOOL_RESULTS]
{%- elif m.role == 'assistant' %} {{ m.content | trim }}{{ eos_token }}
{%- endif %}
{%- endfor %}"""

QWEN3_XML = """
{%- if messages[0].role == 'system' %}{% set system_message = messages[0].content %}\
{% set loop_messages = messages[1:] %}\
{%- else %}{% set system_message = 'You are a helpful assistant.' %}\
{% set loop_messages = messages %}{% endif %}
{{- '<|im_start|>system\\n' + system_message }}
{%- if tools %}
{{- '\\n\\n# Tools\\n\\nYou have access to the following functions:\\n\\n<tools>' }}
{%- for tool in tools %}{% set f = tool.function %}
{{- '\\n<function>\\n<name>' + f.name + '</name>\\n<description>' + f.description | trim }}
{{- '</description>\\n<parameters>' }}
{%- for pname, pfields in f.parameters.properties | items %}
{{- '\\n<parameter>\\n<name>' + pname + '</name>\\n<type>' + pfields.type | string }}
{{- '</type>\\n</parameter>' }}
{%- endfor %}
{{- '\\n</parameters>\\n</function>' }}
{%- endfor %}
{{- '\\n</tools>\\n\\nIf you choose to call a function ONLY reply in the following format ' }}
{{- 'with NO suffix:\\n\\n<tool_call>\\n<function=example_function_name>\\n' }}
{{- '<parameter=example_parameter_1>\\nvalue_1\\n</parameter>\\n</function>\\n</tool_call>' }}
{%- endif %}
{{- '<|im_end|>\\n' }}
{%- for m in loop_messages %}
{%- if m.role == 'assistant' and m.tool_calls %}
{{- '<|im_start|>assistant' }}
{%- if m.content %}{{ '\\n' + m.content | trim }}{% endif %}
{%- for c in m.tool_calls %}
{{- '\\n<tool_call>\\n<function=' + c.function.name + '>\\n' }}
{%- for k, v in c.function.arguments | items %}
{{- '<parameter=' + k + '>\\n' }}
{{- v | tojson if v is mapping or (v is sequence and v is not string) else v | string }}
{{- '\\n</parameter>\\n' }}
{%- endfor %}
{{- '</function>\\n</tool_call>' }}
{%- endfor %}
{{- '<|im_end|>\\n' }}
{%- elif m.role == 'tool' %}
{%- if loop.first or loop_messages[loop.index0 - 1].role != 'tool' %}\
{{ '<|im_start|>user' }}{% endif %}
{{- '\\n<tool_response>\\n' + m.content + '\\n</tool_response>' }}
{%- if loop.last or loop_messages[loop.index0 + 1].role != 'tool' %}\
{{ '<|im_end|>\\n' }}{% endif %}
{%- else %}
{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"""

TEMPLATES = {"hermes": HERMES, "llama3_json": LLAMA3, "mistral": MISTRAL, "qwen3_xml": QWEN3_XML}


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


WEATHER = _tool(
    "get_weather",
    "Get the current weather in a city",
    {
        "city": {"type": "string", "maxLength": 20},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    ["city"],
)
ADD = _tool(
    "add",
    "Add two integers",
    {
        "a": {"type": "integer", "minimum": -1000, "maximum": 1000},
        "b": {"type": "integer", "minimum": -1000, "maximum": 1000},
    },
    ["a", "b"],
)
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in (WEATHER, ADD)}


def repeat_prompts(format_name: str) -> list[list[dict[str, Any]]]:
    """Conversations that lead the 135M model to write a call itself (``auto``): it is
    asked to repeat one, written in the family's syntax (alone, after one example, after
    two). The model was not trained to decide when to call a tool; these give it the
    words, and the test checks what the engine makes of them."""
    fmt = format_named(format_name, TEMPLATES[format_name])
    paris = fmt.render_calls([("get_weather", {"city": "Paris"})])
    rome = fmt.render_calls([("get_weather", {"city": "Rome"})])

    def ask(call: str) -> dict[str, Any]:
        return {"role": "user", "content": "Repeat after me: " + call}

    answer = {"role": "assistant", "content": paris}
    return [[ask(rome)], [ask(paris), answer, ask(rome)], [ask(paris), answer] * 2 + [ask(rome)]]
