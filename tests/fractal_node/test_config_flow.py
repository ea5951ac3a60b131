"""Config, options, reconfigure and reauth flows, driven through Home Assistant's flow manager."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult, FlowResultType

from custom_components.fractal_node.const import (
    CONF_CA_PEM,
    CONF_CERTIFICATE_PEM,
    CONF_ENDPOINT,
    CONF_LINK,
    CONF_NODE_ID,
    CONF_PRIVATE_KEY_PEM,
    CONF_TAGS,
    DOMAIN,
)
from tests.fractal_node.helpers import (
    AWS_ENDPOINT,
    NAME,
    NODE_ID,
    aws_settings,
    local_settings,
    node_entry,
    setup_entry,
)
from tests.support.certificates import (
    CertificateAuthority,
    Issued,
    foreign_ca,
    mismatched_key_pem,
    now_utc,
)


async def start(hass: HomeAssistant, **user_input: Any) -> FlowResult:
    """Start the user flow and submit its first step."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}
    return await hass.config_entries.flow.async_configure(result["flow_id"], user_input)


def suggested(result: FlowResult, field: str) -> Any:
    """The value a form shows pre-filled in ``field``."""
    for key in result["data_schema"].schema:
        if key == field:
            return (key.description or {}).get("suggested_value")
    raise AssertionError(f"{field} is not in the form")


# --- user step ---------------------------------------------------------------------------------


async def test_standalone_node_is_created_at_once(hass: HomeAssistant) -> None:
    result = await start(
        hass, name=" Elm Road 12 ", tags="street=Elm Road\nfeeder=F12", link="standalone"
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == NAME
    assert result["data"] == {CONF_NAME: NAME, CONF_NODE_ID: NODE_ID, CONF_LINK: "standalone"}
    assert result["options"] == {CONF_TAGS: {"street": "Elm Road", "feeder": "F12"}}
    entry = result["result"]
    assert entry.unique_id == NODE_ID
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def test_the_user_form_asks_for_name_node_id_tags_and_link(hass: HomeAssistant) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    fields = {str(key): key for key in result["data_schema"].schema}
    assert list(fields) == [CONF_NAME, CONF_NODE_ID, CONF_TAGS, CONF_LINK]
    assert fields[CONF_LINK].default() == "standalone"


async def test_node_id_and_tags_are_optional(hass: HomeAssistant) -> None:
    result = await start(hass, name="The Crown & Anchor", link="standalone")
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_NODE_ID] == "the-crown-anchor"
    assert result["options"] == {CONF_TAGS: {}}


async def test_an_explicit_node_id_is_used(hass: HomeAssistant) -> None:
    result = await start(hass, name=NAME, node_id=" thing:home_7 ", tags="", link="standalone")
    assert result["data"][CONF_NODE_ID] == "thing:home_7"
    assert result["result"].unique_id == "thing:home_7"


@pytest.mark.parametrize(
    ("user_input", "errors"),
    [
        ({"name": NAME, "node_id": "elm road 12"}, {CONF_NODE_ID: "invalid_node_id"}),
        ({"name": NAME, "node_id": "x" * 129}, {CONF_NODE_ID: "invalid_node_id"}),
        ({"name": "   "}, {CONF_NAME: "invalid_name"}),
        ({"name": "x" * 65}, {CONF_NAME: "invalid_name"}),
        ({"name": NAME, "tags": "Street=Elm"}, {CONF_TAGS: "invalid_tags"}),
        (
            {"name": "", "node_id": "bad id", "tags": "street"},
            {CONF_NAME: "invalid_name", CONF_NODE_ID: "invalid_node_id", CONF_TAGS: "invalid_tags"},
        ),
    ],
)
async def test_bad_user_input_is_shown_on_its_field(
    hass: HomeAssistant, user_input: dict[str, str], errors: dict[str, str]
) -> None:
    result = await start(hass, link="standalone", **user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == errors
    assert suggested(result, CONF_NAME) == user_input["name"]  # nothing typed is lost


async def test_the_tag_problem_is_explained_and_the_flow_recovers(hass: HomeAssistant) -> None:
    result = await start(hass, name=NAME, tags="street=Elm\nstreet=Oak", link="standalone")
    assert result["errors"] == {CONF_TAGS: "invalid_tags"}
    assert result["description_placeholders"] == {"tags_problem": "tag 'street' is given twice"}
    assert suggested(result, CONF_TAGS) == "street=Elm\nstreet=Oak"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"name": NAME, "tags": "street=Elm", "link": "standalone"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["options"] == {CONF_TAGS: {"street": "Elm"}}


async def test_a_node_is_configured_only_once(hass: HomeAssistant) -> None:
    node_entry().add_to_hass(hass)
    result = await start(hass, name="Another name", node_id=NODE_ID, link="standalone")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


# --- local aggregator --------------------------------------------------------------------------


async def test_local_aggregator_entry_keeps_its_settings(
    hass: HomeAssistant, local_ca: CertificateAuthority, node_credentials: Issued
) -> None:
    result = await start(hass, name=NAME, tags="street=Elm Road", link="local")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "local"
    assert result["description_placeholders"] == {"node_id": NODE_ID}
    fields = {str(key): key for key in result["data_schema"].schema}
    assert list(fields) == [
        CONF_HOST,
        CONF_PORT,
        CONF_CA_PEM,
        CONF_CERTIFICATE_PEM,
        CONF_PRIVATE_KEY_PEM,
    ]
    assert fields[CONF_PORT].default() == 8883
    settings = local_settings(local_ca, node_credentials)
    pasted = {key: f"\n{value}\n\n" if "pem" in key else value for key, value in settings.items()}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], pasted)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == NAME
    assert result["data"] == {
        CONF_NAME: NAME,
        CONF_NODE_ID: NODE_ID,
        CONF_LINK: "local",
        **settings,  # PEM as files have it: no stray blank lines, one final line break
    }
    assert result["options"] == {CONF_TAGS: {"street": "Elm Road"}}
    await hass.async_block_till_done()
    assert result["result"].state is ConfigEntryState.LOADED


async def test_local_port_is_an_integer_with_a_default(
    hass: HomeAssistant, local_ca: CertificateAuthority, node_credentials: Issued
) -> None:
    result = await start(hass, name=NAME, link="local")
    settings = local_settings(local_ca, node_credentials)
    del settings[CONF_PORT]
    result = await hass.config_entries.flow.async_configure(result["flow_id"], settings)
    assert result["data"][CONF_PORT] == 8883
    assert isinstance(result["data"][CONF_PORT], int)


def local_error_cases(ca: CertificateAuthority, node: Issued) -> list[tuple[dict[str, str], dict]]:
    now = now_utc()
    expired = ca.issue(NODE_ID, not_before=now - timedelta(days=30), not_after=now - timedelta(1))
    future = ca.issue(NODE_ID, not_before=now + timedelta(days=1))
    stranger = foreign_ca().issue(NODE_ID)
    other_node = ca.issue("oak-road-3")
    return [
        ({CONF_HOST: "mqtt://192.168.1.20:8883"}, {CONF_HOST: "invalid_host"}),
        ({CONF_HOST: "-bad-.local"}, {CONF_HOST: "invalid_host"}),
        ({CONF_CA_PEM: "not a certificate"}, {CONF_CA_PEM: "invalid_ca"}),
        ({CONF_CA_PEM: node.certificate_pem}, {CONF_CA_PEM: "invalid_ca"}),
        (
            {CONF_CERTIFICATE_PEM: "-----BEGIN CERTIFICATE-----"},
            {CONF_CERTIFICATE_PEM: "invalid_certificate"},
        ),
        ({CONF_PRIVATE_KEY_PEM: "secret"}, {CONF_PRIVATE_KEY_PEM: "invalid_private_key"}),
        ({CONF_PRIVATE_KEY_PEM: mismatched_key_pem()}, {CONF_PRIVATE_KEY_PEM: "key_mismatch"}),
        (
            {
                CONF_CERTIFICATE_PEM: expired.certificate_pem,
                CONF_PRIVATE_KEY_PEM: expired.private_key_pem,
            },
            {CONF_CERTIFICATE_PEM: "certificate_expired"},
        ),
        (
            {
                CONF_CERTIFICATE_PEM: future.certificate_pem,
                CONF_PRIVATE_KEY_PEM: future.private_key_pem,
            },
            {CONF_CERTIFICATE_PEM: "certificate_not_yet_valid"},
        ),
        (
            {
                CONF_CERTIFICATE_PEM: stranger.certificate_pem,
                CONF_PRIVATE_KEY_PEM: stranger.private_key_pem,
            },
            {CONF_CERTIFICATE_PEM: "certificate_not_issued_by_ca"},
        ),
        (
            {
                CONF_CERTIFICATE_PEM: other_node.certificate_pem,
                CONF_PRIVATE_KEY_PEM: other_node.private_key_pem,
            },
            {CONF_CERTIFICATE_PEM: "node_id_mismatch"},
        ),
        (
            {CONF_HOST: "", CONF_CA_PEM: "", CONF_PRIVATE_KEY_PEM: node.certificate_pem},
            {
                CONF_HOST: "invalid_host",
                CONF_CA_PEM: "invalid_ca",
                CONF_PRIVATE_KEY_PEM: "invalid_private_key",
            },
        ),
    ]


async def test_every_local_error_is_shown_on_its_field_and_the_flow_recovers(
    hass: HomeAssistant, local_ca: CertificateAuthority, node_credentials: Issued
) -> None:
    good = local_settings(local_ca, node_credentials)
    result = await start(hass, name=NAME, link="local")
    for change, errors in local_error_cases(local_ca, node_credentials):
        result = await hass.config_entries.flow.async_configure(result["flow_id"], good | change)
        assert result["type"] is FlowResultType.FORM, change
        assert result["step_id"] == "local"
        assert result["errors"] == errors, change
        for field, value in change.items():
            assert suggested(result, field) == value  # what was typed stays in the form
    result = await hass.config_entries.flow.async_configure(result["flow_id"], good)
    assert result["type"] is FlowResultType.CREATE_ENTRY


# --- AWS IoT Core ------------------------------------------------------------------------------


async def test_aws_entry_accepts_an_aws_issued_certificate(
    hass: HomeAssistant, amazon_root_ca: CertificateAuthority, aws_credentials: Issued
) -> None:
    result = await start(hass, name=NAME, node_id="home-7", link="aws")
    assert result["step_id"] == "aws"
    fields = [str(key) for key in result["data_schema"].schema]
    assert fields == [
        CONF_ENDPOINT,
        CONF_PORT,
        CONF_CERTIFICATE_PEM,
        CONF_PRIVATE_KEY_PEM,
        CONF_CA_PEM,
    ]
    settings = aws_settings(amazon_root_ca, aws_credentials)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], settings)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_NAME: NAME, CONF_NODE_ID: "home-7", CONF_LINK: "aws", **settings}


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        (
            {CONF_ENDPOINT: "https://abc123-ats.iot.eu-west-2.amazonaws.com"},
            {CONF_ENDPOINT: "invalid_endpoint"},
        ),
        ({CONF_ENDPOINT: "localhost"}, {CONF_ENDPOINT: "invalid_endpoint"}),
        ({CONF_ENDPOINT: "abc 123.amazonaws.com"}, {CONF_ENDPOINT: "invalid_endpoint"}),
        ({CONF_CA_PEM: "AmazonRootCA1"}, {CONF_CA_PEM: "invalid_ca"}),
        ({CONF_CERTIFICATE_PEM: ""}, {CONF_CERTIFICATE_PEM: "invalid_certificate"}),
        ({CONF_PRIVATE_KEY_PEM: ""}, {CONF_PRIVATE_KEY_PEM: "invalid_private_key"}),
        ({CONF_PRIVATE_KEY_PEM: mismatched_key_pem("rsa")}, {CONF_PRIVATE_KEY_PEM: "key_mismatch"}),
    ],
)
async def test_aws_errors(
    hass: HomeAssistant,
    amazon_root_ca: CertificateAuthority,
    aws_credentials: Issued,
    change: dict[str, str],
    errors: dict[str, str],
) -> None:
    result = await start(hass, name=NAME, link="aws")
    settings = aws_settings(amazon_root_ca, aws_credentials) | change
    result = await hass.config_entries.flow.async_configure(result["flow_id"], settings)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors


async def test_aws_refuses_an_expired_certificate(
    hass: HomeAssistant, amazon_root_ca: CertificateAuthority
) -> None:
    now = now_utc()
    expired = foreign_ca().issue(
        "AWS IoT Certificate", not_before=now - timedelta(days=400), not_after=now - timedelta(1)
    )
    result = await start(hass, name=NAME, link="aws")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], aws_settings(amazon_root_ca, expired)
    )
    assert result["errors"] == {CONF_CERTIFICATE_PEM: "certificate_expired"}


# --- options flow: tags ------------------------------------------------------------------------


async def test_options_change_the_tags_and_reload_the_node(hass: HomeAssistant) -> None:
    entry = node_entry()
    await setup_entry(hass, entry)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    assert suggested(result, CONF_TAGS) == "feeder=F12\nstreet=Elm Road"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TAGS: "street=Oak Lane, community=Riverside"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options == {CONF_TAGS: {"street": "Oak Lane", "community": "Riverside"}}
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.runtime.config.tags == {
        "street": "Oak Lane",
        "community": "Riverside",
    }


async def test_options_refuse_bad_tags_and_keep_the_old_ones(hass: HomeAssistant) -> None:
    entry = node_entry()
    await setup_entry(hass, entry)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TAGS: "feeder=F12\nno-dashes=1"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_TAGS: "invalid_tags"}
    assert "no-dashes" in result["description_placeholders"]["tags_problem"]
    assert suggested(result, CONF_TAGS) == "feeder=F12\nno-dashes=1"
    result = await hass.config_entries.options.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {CONF_TAGS: {}}  # an empty field clears the tags


# --- reconfigure: the link ---------------------------------------------------------------------


async def test_reconfigure_links_a_standalone_node_to_a_local_aggregator(
    hass: HomeAssistant, local_ca: CertificateAuthority, node_credentials: Issued
) -> None:
    entry = node_entry()
    await setup_entry(hass, entry)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    assert suggested(result, CONF_LINK) == "standalone"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_LINK: "local"})
    assert result["step_id"] == "local"
    assert suggested(result, CONF_HOST) is None  # nothing to start from
    settings = local_settings(local_ca, node_credentials)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], settings)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data == {CONF_NAME: NAME, CONF_NODE_ID: NODE_ID, CONF_LINK: "local", **settings}
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.runtime.config.link == "local"


async def test_reconfigure_to_standalone_forgets_the_credentials(
    hass: HomeAssistant, local_ca: CertificateAuthority, node_credentials: Issued
) -> None:
    entry = node_entry("local", **local_settings(local_ca, node_credentials))
    await setup_entry(hass, entry)
    result = await entry.start_reconfigure_flow(hass)
    assert suggested(result, CONF_LINK) == "local"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LINK: "standalone"}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()  # the reload stops the link
    assert entry.data == {CONF_NAME: NAME, CONF_NODE_ID: NODE_ID, CONF_LINK: "standalone"}
    assert entry.options  # tags are the options flow's business


async def test_reconfigure_same_link_starts_from_the_current_settings(
    hass: HomeAssistant, amazon_root_ca: CertificateAuthority, aws_credentials: Issued
) -> None:
    settings = aws_settings(amazon_root_ca, aws_credentials)
    entry = node_entry("aws", **settings)
    await setup_entry(hass, entry)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_LINK: "aws"})
    assert result["step_id"] == "aws"
    assert suggested(result, CONF_ENDPOINT) == AWS_ENDPOINT
    assert suggested(result, CONF_CERTIFICATE_PEM) == aws_credentials.certificate_pem
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], settings | {CONF_ENDPOINT: "nope"}
    )
    assert result["errors"] == {CONF_ENDPOINT: "invalid_endpoint"}
    new_endpoint = "xyz789-ats.iot.eu-west-1.amazonaws.com"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], settings | {CONF_ENDPOINT: new_endpoint, CONF_PORT: 443}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()  # the reload stops the link
    assert entry.data[CONF_ENDPOINT] == new_endpoint
    assert entry.data[CONF_PORT] == 443


async def test_reconfigure_to_another_link_starts_empty(
    hass: HomeAssistant, local_ca: CertificateAuthority, node_credentials: Issued
) -> None:
    entry = node_entry("local", **local_settings(local_ca, node_credentials))
    await setup_entry(hass, entry)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_LINK: "aws"})
    assert result["step_id"] == "aws"
    assert suggested(result, CONF_CA_PEM) is None


async def test_reconfigure_checks_the_common_name_against_the_node_id(
    hass: HomeAssistant, local_ca: CertificateAuthority
) -> None:
    entry = node_entry()
    await setup_entry(hass, entry)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_LINK: "local"})
    other = local_ca.issue("oak-road-3")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], local_settings(local_ca, other)
    )
    assert result["errors"] == {CONF_CERTIFICATE_PEM: "node_id_mismatch"}
    assert entry.data[CONF_LINK] == "standalone"  # nothing changed


# --- reauth: new certificates ------------------------------------------------------------------


async def test_reauth_replaces_the_local_credentials(
    hass: HomeAssistant, local_ca: CertificateAuthority, node_credentials: Issued
) -> None:
    old = local_settings(local_ca, node_credentials)
    entry = node_entry("local", **old)
    await setup_entry(hass, entry)
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"] == {"name": NAME}
    assert [str(key) for key in result["data_schema"].schema] == [
        CONF_CA_PEM,
        CONF_CERTIFICATE_PEM,
        CONF_PRIVATE_KEY_PEM,
    ]
    new_ca = foreign_ca()
    renewed = new_ca.issue(NODE_ID)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_CA_PEM: local_ca.certificate_pem,
            CONF_CERTIFICATE_PEM: renewed.certificate_pem,
            CONF_PRIVATE_KEY_PEM: renewed.private_key_pem,
        },
    )
    assert result["errors"] == {CONF_CERTIFICATE_PEM: "certificate_not_issued_by_ca"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_CA_PEM: new_ca.certificate_pem,
            CONF_CERTIFICATE_PEM: renewed.certificate_pem,
            CONF_PRIVATE_KEY_PEM: renewed.private_key_pem,
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_CERTIFICATE_PEM] == renewed.certificate_pem
    assert entry.data[CONF_CA_PEM] == new_ca.certificate_pem
    assert entry.data[CONF_HOST] == old[CONF_HOST]
    assert entry.state is ConfigEntryState.LOADED


async def test_reauth_on_aws_asks_only_for_certificate_and_key(
    hass: HomeAssistant, amazon_root_ca: CertificateAuthority, aws_credentials: Issued
) -> None:
    entry = node_entry("aws", **aws_settings(amazon_root_ca, aws_credentials))
    await setup_entry(hass, entry)
    result = await entry.start_reauth_flow(hass)
    assert [str(key) for key in result["data_schema"].schema] == [
        CONF_CERTIFICATE_PEM,
        CONF_PRIVATE_KEY_PEM,
    ]
    renewed = foreign_ca().issue("AWS IoT Certificate", key_type="rsa")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_CERTIFICATE_PEM: renewed.certificate_pem, CONF_PRIVATE_KEY_PEM: mismatched_key_pem()},
    )
    assert result["errors"] == {CONF_PRIVATE_KEY_PEM: "key_mismatch"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_CERTIFICATE_PEM: renewed.certificate_pem,
            CONF_PRIVATE_KEY_PEM: renewed.private_key_pem,
        },
    )
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()  # the reload stops the link
    assert entry.data[CONF_CERTIFICATE_PEM] == renewed.certificate_pem
    assert entry.data[CONF_CA_PEM] == amazon_root_ca.certificate_pem


async def test_reauth_reports_a_problem_outside_the_form_as_base(
    hass: HomeAssistant, aws_credentials: Issued
) -> None:
    # The stored CA is unusable (damaged storage): the form cannot point at a field for it.
    entry = node_entry("aws", **aws_settings(foreign_ca(), aws_credentials) | {CONF_CA_PEM: "x"})
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_CERTIFICATE_PEM: aws_credentials.certificate_pem,
            CONF_PRIVATE_KEY_PEM: aws_credentials.private_key_pem,
        },
    )
    assert result["errors"] == {"base": "invalid_ca"}


async def test_a_standalone_node_has_nothing_to_reauthenticate(hass: HomeAssistant) -> None:
    entry = node_entry()
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_not_needed"
