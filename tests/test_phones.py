import pytest

from models.phones import InvalidPhoneNumber, is_whatsapp_id, normalize_phone, same_account


@pytest.mark.parametrize("raw", ["919876543210", "+91 98765 43210", "9876543210", "0091 98765-43210"])
def test_indian_spellings_normalize(raw):
    assert normalize_phone(raw) == "919876543210"


def test_other_countries_need_their_code():
    assert normalize_phone("+1 415 555 2671") == "14155552671"
    assert normalize_phone("14155552671") == "14155552671"


def test_ten_digits_take_the_configured_region():
    assert normalize_phone("4155552671", default_region="US") == "14155552671"


@pytest.mark.parametrize("raw", ["", "12345", "abc", "91987654321x", "+999 123", "1" * 20])
def test_invalid_numbers_are_refused(raw):
    with pytest.raises(InvalidPhoneNumber, match="Invalid phone number format"):
        normalize_phone(raw)


@pytest.mark.parametrize("raw, digits", [
    ("+52 1 55 3437 2942", "5215534372942"),  # Mexico: the old mobile "1", still in WhatsApp ids
    ("5215534372942", "5215534372942"),
    ("+52 55 3437 2942", "525534372942"),
    ("+55 11 98765 4321", "5511987654321"),  # Brazil with the ninth digit
    ("+55 11 8765 4321", "551187654321"),  # ... and without it (older accounts)
])
def test_numbers_whatsapp_addresses_are_accepted_as_written(raw, digits):
    assert normalize_phone(raw) == digits


@pytest.mark.parametrize("raw", ["+52 1 00 3437 2942", "+55 11 3333 444", "+55 00 8765 4321"])
def test_the_exceptions_need_a_valid_mobile_behind_them(raw):
    with pytest.raises(InvalidPhoneNumber):
        normalize_phone(raw)


@pytest.mark.parametrize("a, b, same", [
    ("5215534372942", "525534372942", True),
    ("5511987654321", "551187654321", True),
    ("919876543210", "919876543210", True),
    ("919876543210", "919876543211", False),
    ("551133334444", "5511933334444", False),  # a landline has no ninth digit to add
])
def test_one_account_written_two_ways(a, b, same):
    assert same_account(a, b) is same and same_account(b, a) is same


@pytest.mark.parametrize("raw", ["919876543210@c.us", " +919876543210@c.us ", "919876543210@s.whatsapp.net"])
def test_a_persons_whatsapp_id_by_number_is_that_number(raw):
    """whatsapp-web.js names a chat "<number>@c.us"; the seed's sanitizer kept its digits."""
    assert normalize_phone(raw) == "919876543210"
    assert not is_whatsapp_id(raw)


@pytest.mark.parametrize("raw", ["120363025246125888@g.us", "134532350852872@lid", "status@broadcast", "abc@c.us"])
def test_other_whatsapp_ids_are_not_numbers(raw):
    with pytest.raises(InvalidPhoneNumber):
        normalize_phone(raw)
