from django.contrib.auth import views as auth_views
from django.urls import path

from console.helpdesk import HelpdeskCardView, HelpdeskSearchView
from console.views import AuditView, HomeView, LoginView

app_name = "console"

urlpatterns = [
    path("", HomeView.as_view(), name="home"),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="console:login"), name="logout"),
    path("audit/", AuditView.as_view(), name="audit"),
    # helpdesk (issue 14)
    path("helpdesk/", HelpdeskSearchView.as_view(), name="helpdesk"),
    path("helpdesk/cards/<uuid:card_id>/", HelpdeskCardView.as_view(), name="helpdesk-card"),
]
