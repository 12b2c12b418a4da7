package fuzz
import rego.v1
default allow := false
allow if count(input.workflow) < 3
