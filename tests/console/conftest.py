"""Registry fixtures the console's tests share with the registry's."""

from tests.cms.conftest import cps4  # noqa: F401 - a fixture
