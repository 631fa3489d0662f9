package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// completionCommand prints a shell completion script made from the command
// table itself, so it never falls behind the commands and flags.
func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: "bash: source <(ork completion bash)   (or put it in ~/.bashrc)\n" +
			"zsh:  source <(ork completion zsh)    (in ~/.zshrc)\n" +
			"fish: ork completion fish > ~/.config/fish/completions/ork.fish",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErr(c, "name the shell: bash, zsh or fish")
			}
			w := c.App.Writer
			switch c.Args().First() {
			case "bash":
				writeBashCompletion(w, c.App)
			case "zsh":
				fmt.Fprintln(w, "#compdef ork")
				fmt.Fprintln(w, "# zsh completion for ork: zsh runs the bash completion through bashcompinit.")
				fmt.Fprintln(w, "(( $+functions[compdef] )) || { autoload -U +X compinit && compinit; }")
				fmt.Fprintln(w, "autoload -U +X bashcompinit && bashcompinit")
				writeBashCompletion(w, c.App)
			case "fish":
				writeFishCompletion(w, c.App)
			default:
				return usageErr(c, fmt.Sprintf("no completion for shell %q: bash, zsh or fish", c.Args().First()))
			}
			return nil
		},
	}
}

// flagWords returns the spellings of flags: --name, and -n for a one-letter
// alias.
func flagWords(flags []cli.Flag) []string {
	var out []string
	for _, f := range flags {
		for _, n := range f.Names() {
			out = append(out, dashes(n))
		}
	}
	if !slices.Contains(out, "--help") {
		out = append(out, "--help")
	}
	return out
}

// valueFlags returns the spellings of the flags that take a value.
func valueFlags(flags []cli.Flag) []string {
	var out []string
	for _, f := range flags {
		if _, ok := f.(*cli.BoolFlag); ok {
			continue
		}
		for _, n := range f.Names() {
			out = append(out, dashes(n))
		}
	}
	return out
}

// commandsTakingWorkflow complete their first argument with workflow names.
var commandsTakingWorkflow = []string{"trigger", "delete-workflow", "pause", "unpause"}

func writeBashCompletion(w io.Writer, app *cli.App) {
	var names []string
	for _, cmd := range app.VisibleCommands() {
		names = append(names, cmd.Name)
	}
	global := valueFlags(app.Flags)
	fmt.Fprintf(w, `# bash completion for ork
_ork() {
    local cur prev cmd i
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    cmd=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            %s) ((i++)) ;;
            -*) ;;
            *) cmd="${COMP_WORDS[i]}"; break ;;
        esac
    done
    local flags="" values=""
    case "$cmd" in
`, strings.Join(global, "|"))
	fmt.Fprintf(w, "        \"\") flags=%q ;;\n", strings.Join(flagWords(app.Flags), " "))
	for _, cmd := range app.VisibleCommands() {
		fmt.Fprintf(w, "        %s) flags=%q; values=%q ;;\n", cmd.Name, strings.Join(flagWords(cmd.Flags), " "), strings.Join(valueFlags(cmd.Flags), " "))
	}
	fmt.Fprintf(w, `    esac
    # After a flag that takes a value: complete file names.
    case " $values %s " in
        *" $prev "*) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    elif [[ -z "$cmd" ]]; then
        COMPREPLY=($(compgen -W %q -- "$cur"))
    else
        case "$cmd" in
            %s)
                local wfs
                wfs="$(ork list-workflows 2>/dev/null | tail -n +2 | cut -d' ' -f1)"
                COMPREPLY=($(compgen -W "$wfs" -- "$cur")) ;;
            completion) COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")) ;;
            *) COMPREPLY=($(compgen -f -- "$cur")) ;;
        esac
    fi
}
complete -F _ork ork
`, strings.Join(global, " "), strings.Join(names, " "), strings.Join(commandsTakingWorkflow, "|"))
}

func writeFishCompletion(w io.Writer, app *cli.App) {
	fmt.Fprintln(w, "# fish completion for ork")
	fmt.Fprintln(w, "complete -c ork -f")
	for _, f := range app.Flags {
		writeFishFlag(w, "", f)
	}
	for _, cmd := range app.VisibleCommands() {
		fmt.Fprintf(w, "complete -c ork -n __fish_use_subcommand -a %s -d %s\n", cmd.Name, fishQuote(cmd.Usage))
		for _, f := range cmd.Flags {
			writeFishFlag(w, cmd.Name, f)
		}
	}
	fmt.Fprintf(w, "complete -c ork -n '__fish_seen_subcommand_from %s' -a '(ork list-workflows 2>/dev/null | tail -n +2 | cut -d\" \" -f1)'\n", strings.Join(commandsTakingWorkflow, " "))
	fmt.Fprintln(w, "complete -c ork -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'")
}

func writeFishFlag(w io.Writer, cmd string, f cli.Flag) {
	cond := "__fish_use_subcommand"
	if cmd != "" {
		cond = "__fish_seen_subcommand_from " + cmd
	}
	var spell []string
	for _, n := range f.Names() {
		if len(n) == 1 {
			spell = append(spell, "-s "+n)
		} else {
			spell = append(spell, "-l "+n)
		}
	}
	usage := ""
	if df, ok := f.(cli.DocGenerationFlag); ok {
		usage = df.GetUsage()
	}
	req := ""
	if _, ok := f.(*cli.BoolFlag); !ok {
		req = " -r"
	}
	fmt.Fprintf(w, "complete -c ork -n '%s' %s%s -d %s\n", cond, strings.Join(spell, " "), req, fishQuote(usage))
}

func fishQuote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}
