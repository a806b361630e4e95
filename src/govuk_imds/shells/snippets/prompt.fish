# govuk-imds prompt segment for fish. In ~/.config/fish/config.fish:  govuk-imds prompt fish | source
# In a shell that `govuk-imds env`, `exec` or `shell` pointed at an environment, the prompt starts with its name,
# coloured by environment (production red, staging yellow, others green), and says "locked" while it is. It reads
# one small file the daemon keeps current with fish's builtins (and `date` for the time): Python never starts.
function __govuk_imds_prompt --description 'the GOV.UK environment this shell points at (govuk-imds)'
    set -q GOVUK_IMDS_ENVIRONMENT; or return 0
    set -l state locked
    if set -q GOVUK_IMDS_STATE_FILE; and test -r "$GOVUK_IMDS_STATE_FILE"
        read -l word ends rest <$GOVUK_IMDS_STATE_FILE
        if test "$word" = unlocked; and string match -qr '^[0-9]+$' -- "$ends"; and test "$ends" -gt (date +%s)
            set state unlocked
        end
    end
    switch $GOVUK_IMDS_ENVIRONMENT
        case 'production*'
            set_color --bold red
        case 'staging*'
            set_color yellow
        case '*'
            set_color green
    end
    if test $state = unlocked
        printf '(%s) ' $GOVUK_IMDS_ENVIRONMENT
    else
        printf '(%s locked) ' $GOVUK_IMDS_ENVIRONMENT
    end
    set_color normal
end

function __govuk_imds_keep_status --description 'hand the last command status on to the original prompt'
    return $argv[1]
end

if functions -q fish_prompt; and not functions -q __govuk_imds_original_prompt
    functions -c fish_prompt __govuk_imds_original_prompt
    function fish_prompt
        set -l last $status
        __govuk_imds_prompt
        __govuk_imds_keep_status $last
        __govuk_imds_original_prompt
    end
end
