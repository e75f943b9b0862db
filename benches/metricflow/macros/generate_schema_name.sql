{# the models are tally's demo tables as they are: schema "shop", not "<target>_shop" #}
{% macro generate_schema_name(custom_schema_name, node) -%}
{{ custom_schema_name if custom_schema_name else target.schema }}
{%- endmacro %}
