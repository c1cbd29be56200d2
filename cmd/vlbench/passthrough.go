package main

import "errors"

func runPassthrough(args []string) error { return errors.New("not yet") }
