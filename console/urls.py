from django.contrib.auth import views as auth_views
from django.urls import path

from console.relying_parties import ContactlessView
from console.views import AuditView, HomeView, LoginView

app_name = "console"

urlpatterns = [
    path("", HomeView.as_view(), name="home"),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="console:login"), name="logout"),
    path("audit/", AuditView.as_view(), name="audit"),
    # --- contactless relying parties and the signed deny list (issue 16)
    path("contactless/", ContactlessView.as_view(), name="contactless"),
]
