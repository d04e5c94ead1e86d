from django.apps import AppConfig


class AssistantConfig(AppConfig):
    name = "example_django.assistant"
    label = "assistant"
    verbose_name = "Assistant (payi-web demo)"
