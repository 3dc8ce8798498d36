"""Option values are checked at startup, from whichever source they come, and --help shows them."""

from __future__ import annotations

import pytest
from conftest import INI, Project

ONE_CASE = "cases:\n  - id: a\n    prompt: x\n"


BAD_BASE_URLS = {
    "no scheme": "{host}/v1",
    "no scheme, a name": "localhost:8080/v1",
    "unclosed IPv6 bracket": "http://[::1",
    "bad port": "http://[::1]:80x/v1",
    "not http": "ftp://{host}/v1",
    "no host": "http:///v1",
    "unparsable, with credentials": "https://user:s3cret@[::1",
    "a password with an unescaped slash": "http://user:s3cret/x@{host}/v1",
}


@pytest.mark.parametrize("template", BAD_BASE_URLS.values(), ids=list(BAD_BASE_URLS))
def test_a_bad_base_url_on_the_command_line_is_a_usage_error_naming_the_option(
    project: Project, template: str
) -> None:
    host = project.url.split("://", 1)[1].split("/")[0]
    url = template.replace("{host}", host)
    project.suite("test_one.yaml", ONE_CASE)

    # After the conftest's good --grok-base-url: argparse keeps the last one.
    result = project.run("--grok-base-url", url)

    project.assert_sent_nothing(
        result,
        pytest.ExitCode.USAGE_ERROR,
        "*argument --grok-base-url: must be an http:// or https:// URL such as *, got *",
    )
    assert "s3cret" not in result.stdout.str() + result.stderr.str()


def test_a_bad_base_url_in_the_ini_file_is_a_usage_error_naming_the_ini_option(
    project: Project,
) -> None:
    project.pytester.makeini(INI + "grok_base_url = 127.0.0.1:8080/v1\n")
    project.suite("test_one.yaml", ONE_CASE)

    result = project.pytester.runpytest("-p", "no:randomly")

    project.assert_sent_nothing(
        result,
        pytest.ExitCode.USAGE_ERROR,
        "*ini option grok_base_url (for --grok-base-url): must be an http:// or https:// URL*",
    )


def test_a_bad_base_url_in_the_environment_is_a_usage_error_naming_the_variable(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XAI_BASE_URL", "https://key:s3cret@[::1/v1")
    project.suite("test_one.yaml", ONE_CASE)

    result = project.pytester.runpytest("-p", "no:randomly")

    project.assert_sent_nothing(
        result,
        pytest.ExitCode.USAGE_ERROR,
        "*environment variable XAI_BASE_URL (for --grok-base-url): must be an http:// or*",
    )
    assert "s3cret" not in result.stdout.str() + result.stderr.str()


def test_a_base_url_with_credentials_is_a_usage_error_that_does_not_print_them(
    project: Project,
) -> None:
    host = project.url.split("://", 1)[1]
    project.suite("test_one.yaml", ONE_CASE)

    result = project.run("--grok-base-url", f"http://user:s3cret@{host}")

    project.assert_sent_nothing(
        result,
        pytest.ExitCode.USAGE_ERROR,
        f"*argument --grok-base-url: must not hold credentials, got 'http://***@{host}'*",
    )
    assert "s3cret" not in result.stdout.str() + result.stderr.str()


def test_a_bad_number_in_the_ini_file_is_a_usage_error_naming_the_ini_option(
    project: Project,
) -> None:
    project.pytester.makeini(INI + "grok_max_concurrent = 0\n")
    project.suite("test_one.yaml", ONE_CASE)

    result = project.run()

    project.assert_sent_nothing(
        result,
        pytest.ExitCode.USAGE_ERROR,
        "*ini option grok_max_concurrent (for --grok-max-concurrent): must be a positive*",
    )


def test_help_names_each_value_and_lists_the_record_modes(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)

    result = pytester.runpytest("--help")

    help_text = result.stdout.str()
    for line in [
        "*--grok-max-concurrent=N*",
        "*--grok-model=NAME*",
        "*--grok-base-url=URL*",
        "*--grok-timeout=SECONDS*",
        "*--grok-record={none,new,all,rewrite}*",
        "*--grok-max-cost=USD*",
        "*--grok-report=PATH*",
    ]:
        result.stdout.fnmatch_lines([line])
    assert "=VALUE" not in help_text


BAD_INI_VALUES = {
    "retry delay nan": ("grok_retry_base_delay", "nan", "must be zero or a positive finite"),
    "retry delay -1": ("grok_retry_base_delay", "-1", "must be zero or a positive finite"),
    "retry delay inf": ("grok_retry_base_delay", "inf", "must be zero or a positive finite"),
    "retry delay word": ("grok_retry_base_delay", "soon", "must be a number, got 'soon'"),
    "empty judge model": ("grok_judge_model", "", "must not be empty"),
    "empty key variable": ("grok_api_key_env", "", "must not be empty"),
    "empty model": ("grok_model", "", "must not be empty"),
    "gc freeze word": ("grok_gc_freeze", "maybe", "must be true or false, got 'maybe'"),
}


@pytest.mark.parametrize("key", list(BAD_INI_VALUES))
def test_a_bad_or_empty_ini_value_is_a_usage_error_naming_the_ini_option(
    project: Project, key: str
) -> None:
    name, value, message = BAD_INI_VALUES[key]
    ini = INI.replace("grok_retry_base_delay = 0.01\n", "")
    project.pytester.makeini(ini + f"{name} = {value}\n")
    project.suite("test_one.yaml", ONE_CASE)

    result = project.run()

    project.assert_sent_nothing(
        result, pytest.ExitCode.USAGE_ERROR, f"*ini option {name}*: {message}*"
    )


@pytest.mark.parametrize("flag", ["--grok-model", "--grok-report", "--grok-api"])
def test_an_empty_value_on_the_command_line_is_a_usage_error(project: Project, flag: str) -> None:
    project.suite("test_one.yaml", ONE_CASE)

    result = project.run(f"{flag}=")

    project.assert_sent_nothing(
        result, pytest.ExitCode.USAGE_ERROR, f"*argument {flag}: must not be empty*"
    )
